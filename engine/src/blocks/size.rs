//! Deep sizes of values, split into host and device bytes: what the block manager charges a
//! cached block against the storage budgets.
//!
//! Unlike an estimate made by walking the JVM heap, a value reports the buffers it owns wherever
//! they live: a tensor's host buffer counts in [`SizeOf::heap_bytes`], its GPU buffer in
//! [`SizeOf::device_bytes`]. Implement the trait with `#[derive(SizeOf)]` on your types.
//!
//! The derive names the engine crate as `::ember_engine`; programs that depend only on the
//! `ember` front crate write `#[size_of(crate = "ember::engine")]` on the type. A field whose
//! type has no implementation can be left out with `#[size_of(skip)]`.
//!
//! Shared buffers (`Arc`, Arrow buffers) are counted in full by every value that holds them: the
//! estimate errs on the side of evicting early rather than overflowing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::mem::size_of;
use std::sync::Arc;

/// A value's deep size: inline bytes, heap bytes it owns, and device (GPU) bytes it owns.
///
/// Implementations provide [`heap_bytes`](SizeOf::heap_bytes) (and
/// [`device_bytes`](SizeOf::device_bytes) for device-resident data); the inline size comes from
/// `size_of::<Self>()`. Types that never own heap or device memory set [`FLAT`](SizeOf::FLAT)
/// so that containers of them are sized in constant time.
///
/// ```
/// use ember_engine::blocks::SizeOf;
///
/// #[derive(SizeOf)]
/// struct Sample {
///     id: u64,
///     pixels: Vec<f32>,
/// }
///
/// let s = Sample { id: 1, pixels: vec![0.0; 1000] };
/// assert_eq!(s.heap_bytes(), 4000);
/// assert_eq!(s.host_bytes(), std::mem::size_of::<Sample>() + 4000);
/// ```
pub trait SizeOf {
    /// True when no value of the type owns heap or device memory (`heap_bytes` is always 0).
    const FLAT: bool = false;

    /// Host bytes owned outside the value's inline representation, recursively.
    fn heap_bytes(&self) -> usize {
        0
    }

    /// Device (GPU) bytes owned by the value, recursively.
    fn device_bytes(&self) -> usize {
        0
    }

    /// Total host bytes: the inline size plus [`heap_bytes`](SizeOf::heap_bytes).
    fn host_bytes(&self) -> usize
    where
        Self: Sized,
    {
        size_of::<Self>() + self.heap_bytes()
    }
}

pub use ember_derive::SizeOf;

/// The (host, device) bytes of one value: the sizer the block manager calls per element.
pub(crate) fn size_pair<T: SizeOf>(v: &T) -> (usize, usize) {
    (v.host_bytes(), v.device_bytes())
}

macro_rules! flat {
    ($($t:ty),*) => {$(
        impl SizeOf for $t {
            const FLAT: bool = true;
        }
    )*};
}
flat!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    std::time::Duration,
    std::num::NonZeroU64,
    std::num::NonZeroUsize
);

impl<T: ?Sized> SizeOf for std::marker::PhantomData<T> {
    const FLAT: bool = true;
}

impl SizeOf for &'static str {
    const FLAT: bool = true;
}

impl SizeOf for String {
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl SizeOf for str {
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// Heap bytes of elements beyond their inline size (0 for flat types, without iterating).
fn elements_heap<'a, T: SizeOf + 'a>(items: impl IntoIterator<Item = &'a T>) -> usize {
    if T::FLAT {
        0
    } else {
        items.into_iter().map(SizeOf::heap_bytes).sum()
    }
}

fn elements_device<'a, T: SizeOf + 'a>(items: impl IntoIterator<Item = &'a T>) -> usize {
    if T::FLAT {
        0
    } else {
        items.into_iter().map(SizeOf::device_bytes).sum()
    }
}

impl<T: SizeOf> SizeOf for Vec<T> {
    fn heap_bytes(&self) -> usize {
        self.capacity() * size_of::<T>() + elements_heap(self)
    }
    fn device_bytes(&self) -> usize {
        elements_device(self)
    }
}

impl<T: SizeOf> SizeOf for VecDeque<T> {
    fn heap_bytes(&self) -> usize {
        self.capacity() * size_of::<T>() + elements_heap(self)
    }
    fn device_bytes(&self) -> usize {
        elements_device(self)
    }
}

impl<T: SizeOf> SizeOf for [T] {
    fn heap_bytes(&self) -> usize {
        elements_heap(self)
    }
    fn device_bytes(&self) -> usize {
        elements_device(self)
    }
}

impl<T: SizeOf, const N: usize> SizeOf for [T; N] {
    const FLAT: bool = T::FLAT;
    fn heap_bytes(&self) -> usize {
        elements_heap(self)
    }
    fn device_bytes(&self) -> usize {
        elements_device(self)
    }
}

impl<T: SizeOf> SizeOf for Box<T> {
    fn heap_bytes(&self) -> usize {
        size_of::<T>() + (**self).heap_bytes()
    }
    fn device_bytes(&self) -> usize {
        (**self).device_bytes()
    }
}

impl<T: SizeOf> SizeOf for Box<[T]> {
    fn heap_bytes(&self) -> usize {
        self.len() * size_of::<T>() + elements_heap(self.iter())
    }
    fn device_bytes(&self) -> usize {
        elements_device(self.iter())
    }
}

impl SizeOf for Box<str> {
    fn heap_bytes(&self) -> usize {
        self.len()
    }
}

/// Counted in full (the two reference counts and the value): see the module docs.
impl<T: SizeOf> SizeOf for Arc<T> {
    fn heap_bytes(&self) -> usize {
        2 * size_of::<usize>() + size_of::<T>() + (**self).heap_bytes()
    }
    fn device_bytes(&self) -> usize {
        (**self).device_bytes()
    }
}

impl SizeOf for Arc<str> {
    fn heap_bytes(&self) -> usize {
        2 * size_of::<usize>() + self.len()
    }
}

impl<T: SizeOf> SizeOf for Arc<[T]> {
    fn heap_bytes(&self) -> usize {
        2 * size_of::<usize>() + self.len() * size_of::<T>() + elements_heap(self.iter())
    }
    fn device_bytes(&self) -> usize {
        elements_device(self.iter())
    }
}

impl<T: SizeOf> SizeOf for Option<T> {
    const FLAT: bool = T::FLAT;
    fn heap_bytes(&self) -> usize {
        self.as_ref().map_or(0, SizeOf::heap_bytes)
    }
    fn device_bytes(&self) -> usize {
        self.as_ref().map_or(0, SizeOf::device_bytes)
    }
}

impl<T: SizeOf, E: SizeOf> SizeOf for Result<T, E> {
    const FLAT: bool = T::FLAT && E::FLAT;
    fn heap_bytes(&self) -> usize {
        match self {
            Ok(v) => v.heap_bytes(),
            Err(e) => e.heap_bytes(),
        }
    }
    fn device_bytes(&self) -> usize {
        match self {
            Ok(v) => v.device_bytes(),
            Err(e) => e.device_bytes(),
        }
    }
}

macro_rules! tuple {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: SizeOf),+> SizeOf for ($($name,)+) {
            const FLAT: bool = $($name::FLAT)&&+;
            fn heap_bytes(&self) -> usize {
                0 $(+ self.$idx.heap_bytes())+
            }
            fn device_bytes(&self) -> usize {
                0 $(+ self.$idx.device_bytes())+
            }
        }
    };
}
tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);
tuple!(A 0, B 1, C 2, D 3, E 4);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// Hash tables: one control byte per bucket besides each (key, value) slot.
impl<K: SizeOf, V: SizeOf, S> SizeOf for HashMap<K, V, S> {
    fn heap_bytes(&self) -> usize {
        self.capacity() * (size_of::<(K, V)>() + 1)
            + elements_heap(self.keys())
            + elements_heap(self.values())
    }
    fn device_bytes(&self) -> usize {
        elements_device(self.keys()) + elements_device(self.values())
    }
}

impl<K: SizeOf, S> SizeOf for HashSet<K, S> {
    fn heap_bytes(&self) -> usize {
        self.capacity() * (size_of::<K>() + 1) + elements_heap(self.iter())
    }
    fn device_bytes(&self) -> usize {
        elements_device(self.iter())
    }
}

/// B-trees: each entry's slot plus a share of node overhead (nodes hold up to 11 entries).
impl<K: SizeOf, V: SizeOf> SizeOf for BTreeMap<K, V> {
    fn heap_bytes(&self) -> usize {
        self.len() * (size_of::<(K, V)>() + 2 * size_of::<usize>())
            + elements_heap(self.keys())
            + elements_heap(self.values())
    }
    fn device_bytes(&self) -> usize {
        elements_device(self.keys()) + elements_device(self.values())
    }
}

impl<K: SizeOf> SizeOf for BTreeSet<K> {
    fn heap_bytes(&self) -> usize {
        self.len() * (size_of::<K>() + 2 * size_of::<usize>()) + elements_heap(self.iter())
    }
    fn device_bytes(&self) -> usize {
        elements_device(self.iter())
    }
}

/// Owned and shared ndarray arrays: the element buffer (shared ones in full). Behind the
/// `ndarray` feature, which `ember-ml` turns on: a plain RDD job does not build ndarray.
#[cfg(feature = "ndarray")]
impl<A: SizeOf, S, D> SizeOf for ndarray::ArrayBase<S, D>
where
    S: ndarray::Data<Elem = A>,
    D: ndarray::Dimension,
{
    fn heap_bytes(&self) -> usize {
        self.len() * size_of::<A>() + elements_heap(self.iter())
    }
    fn device_bytes(&self) -> usize {
        elements_device(self.iter())
    }
}

#[cfg(feature = "arrow")]
mod arrow_impls {
    use super::SizeOf;
    use arrow_array::{Array, ArrayRef, RecordBatch};

    /// An Arrow array: its buffers' capacity as Arrow reports it.
    impl SizeOf for ArrayRef {
        fn heap_bytes(&self) -> usize {
            self.get_array_memory_size()
        }
    }

    /// A record batch: the memory of its column arrays.
    impl SizeOf for RecordBatch {
        fn heap_bytes(&self) -> usize {
            self.get_array_memory_size()
        }
    }

    macro_rules! arrays {
        ($($t:ty),*) => {$(
            impl SizeOf for $t {
                fn heap_bytes(&self) -> usize {
                    Array::get_array_memory_size(self)
                }
            }
        )*};
    }
    arrays!(
        arrow_array::Float32Array,
        arrow_array::Float64Array,
        arrow_array::Int32Array,
        arrow_array::Int64Array,
        arrow_array::UInt8Array,
        arrow_array::UInt32Array,
        arrow_array::UInt64Array,
        arrow_array::BooleanArray,
        arrow_array::StringArray,
        arrow_array::LargeStringArray,
        arrow_array::BinaryArray
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_vectors_count_their_capacity() {
        let s = String::with_capacity(100);
        assert_eq!(s.heap_bytes(), 100);
        let v: Vec<String> = vec!["abc".to_string(); 3];
        assert_eq!(v.heap_bytes(), v.capacity() * size_of::<String>() + 9);
        let f = vec![0f32; 256];
        assert_eq!(f.host_bytes(), size_of::<Vec<f32>>() + 1024);
        const { assert!(<[f64; 4]>::FLAT && !<Vec<f64>>::FLAT) };
        assert_eq!(
            ((1u8, "x".to_string()), Some(vec![1u64])).heap_bytes(),
            1 + 8
        );
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn ndarray_counts_elements() {
        let a = ndarray::Array2::<f32>::zeros((16, 8));
        assert_eq!(a.heap_bytes(), 16 * 8 * 4);
        let shared = a.into_shared();
        assert_eq!(shared.heap_bytes(), 512);
    }

    #[test]
    fn maps_count_keys_values_and_slots() {
        let mut m = HashMap::new();
        m.insert("k".to_string(), vec![1u32, 2]);
        assert!(m.heap_bytes() >= m.capacity() * size_of::<(String, Vec<u32>)>() + 1 + 8);
        let b: BTreeMap<u64, u64> = (0..10).map(|i| (i, i)).collect();
        assert!(b.heap_bytes() >= 160);
    }
}
