//! Threshold encoding as properties: for any residual and threshold, encoding sends exactly the
//! entries at or above τ with their signs and takes ±τ off them, the message decodes to those
//! ±τ values, the layout is a bitmap exactly from N/16 entries on, and any truncation or
//! damage of a valid message is a typed error that leaves the target untouched (never a panic
//! or a wrong update).

use ember_ml::distributed::sharing::encoding::{
    bitmap_from, decode_add, encode, read_header, Encoding, HEADER_BYTES,
};
use ember_ml::distributed::sharing::SharingError;
use proptest::prelude::*;

/// What encoding must do, written out: the entries sent (index, sign) and the residual after.
fn reference(r: &[f32], t: f32) -> (Vec<(usize, f32)>, Vec<f32>) {
    let mut after = r.to_vec();
    let mut sent = Vec::new();
    for (i, v) in after.iter_mut().enumerate() {
        if *v >= t {
            *v -= t;
            sent.push((i, t));
        } else if *v <= -t {
            *v += t;
            sent.push((i, -t));
        }
    }
    (sent, after)
}

fn residual() -> impl Strategy<Value = Vec<f32>> {
    // Mostly small values with some large ones, so both layouts and both signs occur.
    prop::collection::vec(
        prop_oneof![
            4 => -1e-3f32..1e-3,
            1 => -1.0f32..1.0,
            1 => Just(0.0f32),
        ],
        0..600,
    )
}

fn check_round_trip(r: Vec<f32>, t: f32) -> Result<(), TestCaseError> {
    let (sent, after) = reference(&r, t);
    let mut mine = r.clone();
    let mut indices = Vec::new();
    let e = encode(&mut mine, t, 5, 77, true, |i| indices.push(i));
    prop_assert_eq!(&mine, &after, "residual after encoding");
    prop_assert_eq!(e.header.count as usize, sent.len());
    prop_assert_eq!(indices, sent.iter().map(|s| s.0).collect::<Vec<_>>());
    let want = if sent.len() >= bitmap_from(r.len()) {
        Encoding::Bitmap
    } else {
        Encoding::Sparse
    };
    prop_assert_eq!(e.header.encoding, want);
    let mut decoded = vec![0f32; r.len()];
    let h = decode_add(&e.bytes, r.len(), &mut decoded)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!((h.worker, h.step, h.threshold), (5, 77, t));
    let mut expected = vec![0f32; r.len()];
    for (i, v) in sent {
        expected[i] = v;
    }
    prop_assert_eq!(decoded, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn encoding_round_trips(r in residual(), t in prop_oneof![Just(1e-3f32), 1e-4f32..0.5]) {
        check_round_trip(r, t)?;
    }

    #[test]
    fn truncated_or_damaged_messages_are_errors(
        r in residual(),
        cut in 0usize..10_000,
        flip_at in 0usize..10_000,
        flip in 1u8..=255,
    ) {
        let mut res = r.clone();
        let e = encode(&mut res, 1e-3, 1, 2, true, |_| {});
        let len = r.len();
        let untouched = vec![0.5f32; len];
        // Every proper prefix is refused.
        let short = &e.bytes[..cut % e.bytes.len()];
        let mut target = untouched.clone();
        let refused = matches!(
            decode_add(short, len, &mut target),
            Err(SharingError::Message { .. })
        );
        prop_assert!(refused, "a prefix of {} bytes was accepted", short.len());
        prop_assert_eq!(&target, &untouched);
        // Any one damaged byte is refused (the CRC covers header and payload).
        let mut bad = e.bytes.clone();
        let at = flip_at % bad.len();
        bad[at] ^= flip;
        let mut target = untouched.clone();
        prop_assert!(decode_add(&bad, len, &mut target).is_err(), "flip at byte {}", at);
        prop_assert_eq!(&target, &untouched);
    }
}

#[test]
fn the_bitmap_starts_at_n_over_16_entries() {
    let n = 160; // N/16 = 10
    for (count, layout) in [
        (9, Encoding::Sparse),
        (10, Encoding::Bitmap),
        (11, Encoding::Bitmap),
    ] {
        let mut r = vec![0f32; n];
        for i in 0..count {
            r[i * 13 % n] = if i % 2 == 0 { 0.01 } else { -0.01 };
        }
        let e = encode(&mut r, 0.01, 0, 0, true, |_| {});
        assert_eq!(e.header.encoding, layout, "{count} entries of {n}");
        let size = match layout {
            Encoding::Sparse => HEADER_BYTES + 4 * count,
            Encoding::Bitmap => HEADER_BYTES + n / 4,
        };
        assert_eq!(e.bytes.len(), size);
        check_round_trip(
            vec![0.01; count]
                .into_iter()
                .chain(vec![0.0; n - count])
                .collect(),
            0.01,
        )
        .unwrap();
    }
}

#[test]
fn all_zero_and_all_large_vectors() {
    let mut zero = vec![0f32; 1000];
    let e = encode(&mut zero, 1e-3, 0, 0, false, |_| {});
    assert_eq!((e.header.count, e.header.encoding), (0, Encoding::Sparse));
    assert_eq!(e.bytes.len(), HEADER_BYTES);
    assert!(!read_header(&e.bytes).unwrap().active);
    let mut large: Vec<f32> = (0..1001)
        .map(|i| if i % 3 == 0 { -5.0 } else { 5.0 })
        .collect();
    let e = encode(&mut large, 1e-3, 0, 0, true, |_| {});
    assert_eq!(
        (e.header.count, e.header.encoding),
        (1001, Encoding::Bitmap)
    );
    assert_eq!(e.bytes.len(), HEADER_BYTES + 251);
    let mut back = vec![0f32; 1001];
    decode_add(&e.bytes, 1001, &mut back).unwrap();
    assert!(back
        .iter()
        .enumerate()
        .all(|(i, &v)| v == if i % 3 == 0 { -1e-3 } else { 1e-3 }));
}

#[test]
fn a_message_for_another_length_or_from_nowhere_is_refused() {
    let mut r = vec![0.5f32; 40];
    let e = encode(&mut r, 0.1, 0, 0, true, |_| {});
    let err = decode_add(&e.bytes, 41, &mut [0.0; 41]).unwrap_err();
    assert!(
        err.to_string().contains("40 values for a vector of 41"),
        "{err}"
    );
    let err = read_header(b"not an update at all, but long enough to have a header").unwrap_err();
    assert!(err.to_string().contains("bad magic"), "{err}");
}
