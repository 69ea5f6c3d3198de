//! Reading a persisted partition, or computing and storing it: the typed half of the block
//! manager, called from `RddNode::iterator`.
//!
//! A partition is sized while it is materialized (element by element with [`SizeOf`]), and
//! memory is reserved in steps as it grows, so a partition larger than what the budget can hold
//! never overflows it: `MEMORY_ONLY`/`MEMORY_ONLY_SER` stop caching it (it is recomputed next
//! time), `*_AND_DISK` levels stream the rest of it to a spill file.

use std::rc::Rc;
use std::sync::Arc;

use crate::data::Data;
use crate::error::EngineError;
use crate::rdd::{BoxIter, SharedVecIter};
use crate::task::{BlockSource, TaskContext};

use super::block_manager::{BlockId, BlockManager, Mem, Stored};
use super::codec::{BlockIter, BlockWriter, ChunkReader, Codec, Finished, CHUNK_BYTES};
use super::level::StorageLevel;

/// Per-element (host, device) bytes; captured when an RDD is persisted (where `T: SizeOf`).
pub(crate) type Sizer<T> = fn(&T) -> (usize, usize);

/// Memory is reserved in steps of at least this many bytes to keep the lock quiet.
const STEP: u64 = 256 << 10;

/// The partition's elements from the store, or computed by `compute` and stored at `level`.
pub(crate) fn read_or_compute<T: Data>(
    bm: &Arc<BlockManager>,
    id: BlockId,
    worker: usize,
    level: StorageLevel,
    sizer: Sizer<T>,
    tc: &Rc<TaskContext>,
    compute: impl FnOnce() -> BoxIter<T>,
) -> BoxIter<T> {
    if let Some((it, bytes)) = read(bm, id, tc) {
        tc.io.read_local(bytes);
        return it;
    }
    if let Some(plan) = tc.io.remote_for(id) {
        if let Some(holder) = plan.from {
            let fetched = match &tc.io.fetch {
                Some(f) => f.fetch_block(holder, id),
                None => Ok(None),
            };
            match fetched {
                Ok(Some(bytes)) => {
                    let len = bytes.len() as u64;
                    let location =
                        format!("block rdd_{}_{} fetched from worker {holder}", id.0, id.1);
                    match ChunkReader::<T>::memory(Arc::new(bytes), location) {
                        Ok(r) => {
                            tc.io.read_remote(len);
                            let tc2 = Rc::clone(tc);
                            return Box::new(BlockIter::new(r, Box::new(move |e| tc2.fail(e))));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "fetched block unreadable; recomputing")
                        }
                    }
                }
                Ok(None) => tracing::debug!(
                    rdd = id.0,
                    partition = id.1,
                    holder,
                    "holder no longer has the block; recomputing"
                ),
                Err(e) => {
                    tc.fail(e);
                    return Box::new(std::iter::empty());
                }
            }
        }
        tc.io.source.set(Some(BlockSource::Recomputed));
    }
    bm.record_miss(id);
    let store = Store {
        bm: Arc::clone(bm),
        id,
        worker,
        level,
        sizer,
        tc: Rc::clone(tc),
        res_host: 0,
        res_device: 0,
        res_disk: 0,
    };
    if level.deserialized() {
        store.values(compute())
    } else {
        store.serialized(compute())
    }
}

fn read<T: Data>(
    bm: &Arc<BlockManager>,
    id: BlockId,
    tc: &Rc<TaskContext>,
) -> Option<(BoxIter<T>, u64)> {
    let (stored, bytes) = bm.lookup(id)?;
    let reader = match stored {
        Stored::Values(any) => {
            let values = any.downcast::<Vec<T>>().ok()?;
            bm.record_hit();
            return Some((Box::new(SharedVecIter::new(values)), bytes));
        }
        Stored::Bytes(bytes) => {
            ChunkReader::<T>::memory(bytes, format!("memory block rdd_{}_{}", id.0, id.1))
        }
        Stored::File(path) => ChunkReader::<T>::open(&path),
    };
    match reader {
        Ok(r) => {
            bm.record_hit();
            Some((Box::new(BlockIter::new(r, on_error(bm, id, tc))), bytes))
        }
        Err(e) => {
            bm.report_lost(id, &e);
            None
        }
    }
}

/// A block found corrupt while it is read: forget it and fail the attempt, whose retry
/// recomputes the partition from lineage.
fn on_error(
    bm: &Arc<BlockManager>,
    id: BlockId,
    tc: &Rc<TaskContext>,
) -> Box<dyn FnOnce(EngineError)> {
    let (bm, tc) = (Arc::clone(bm), Rc::clone(tc));
    Box::new(move |e| {
        bm.report_lost(id, &e);
        tc.fail(e);
    })
}

/// A temporary block file that is deleted as soon as it is open: its elements are read once.
fn read_once<T: Data>(path: &std::path::Path, tc: &Rc<TaskContext>) -> BoxIter<T> {
    let reader = ChunkReader::<T>::open(path);
    let _ = std::fs::remove_file(path);
    match reader {
        Ok(r) => {
            let tc = Rc::clone(tc);
            Box::new(BlockIter::new(r, Box::new(move |e| tc.fail(e))))
        }
        Err(e) => {
            tc.fail(e);
            Box::new(std::iter::empty())
        }
    }
}

struct Store<T> {
    bm: Arc<BlockManager>,
    id: BlockId,
    worker: usize,
    level: StorageLevel,
    sizer: Sizer<T>,
    tc: Rc<TaskContext>,
    res_host: u64,
    res_device: u64,
    res_disk: u64,
}

impl<T: Data> Store<T> {
    /// Grows the memory reservation to cover `host`/`device` bytes; false when it cannot.
    fn cover(&mut self, host: u64, device: u64) -> bool {
        if host <= self.res_host && device <= self.res_device {
            return true;
        }
        let s = self.bm.settings();
        if host > s.host_budget || device > s.device_budget {
            return false;
        }
        let want_h = (host + (host / 8).max(STEP))
            .min(s.host_budget)
            .max(self.res_host);
        let want_d = if device > self.res_device {
            (device + device / 8).min(s.device_budget)
        } else {
            self.res_device
        };
        // With headroom first (fewer lock round trips), else exactly what is needed.
        let exact = (host.max(self.res_host), device.max(self.res_device));
        for (h, d) in [(want_h, want_d), exact] {
            if self.bm.reserve(
                self.worker,
                self.id.0,
                h - self.res_host,
                d - self.res_device,
            ) {
                self.res_host = h;
                self.res_device = d;
                return true;
            }
        }
        false
    }

    /// Shrinks the reservation to exactly `host`/`device` (which it covers).
    fn settle(&mut self, host: u64, device: u64) {
        self.bm.release(
            self.worker,
            self.res_host.saturating_sub(host),
            self.res_device.saturating_sub(device),
        );
        self.res_host = host.min(self.res_host);
        self.res_device = device.min(self.res_device);
    }

    fn release_all(&mut self) {
        self.settle(0, 0);
        self.bm.release_disk(self.res_disk);
        self.res_disk = 0;
    }

    fn cover_disk(&mut self, bytes: u64) -> bool {
        if bytes <= self.res_disk {
            return true;
        }
        if self.bm.reserve_disk(bytes - self.res_disk) {
            self.res_disk = bytes;
            true
        } else {
            false
        }
    }

    fn spill_codec(&self) -> Codec {
        self.bm.settings().spill_codec
    }

    /// Deserialized levels: collect the values while they fit, else spill or give up.
    fn values(mut self, mut it: BoxIter<T>) -> BoxIter<T> {
        let inline = std::mem::size_of::<T>() as u64;
        let mut values: Vec<T> = Vec::new();
        let (mut heap, mut device) = (0u64, 0u64);
        let mut fits = true;
        for v in it.by_ref() {
            let (h, d) = (self.sizer)(&v);
            heap += (h as u64).saturating_sub(inline);
            device += d as u64;
            values.push(v);
            let host = heap + values.capacity() as u64 * inline;
            if !self.cover(host, device) {
                fits = false;
                break;
            }
        }
        if self.tc.failed() {
            self.release_all();
            return Box::new(std::iter::empty());
        }
        if fits {
            values.shrink_to_fit();
            let host = heap + values.len() as u64 * inline;
            self.settle(host, device);
            let data = Arc::new(values);
            let spill_data = Arc::clone(&data);
            let sizer = self.sizer;
            let encode: super::block_manager::EncodeFn =
                Box::new(move |w| encode_values(&spill_data, w, sizer));
            let any: Arc<dyn std::any::Any + Send + Sync> = data.clone();
            self.bm.put(
                self.id,
                self.worker,
                self.level,
                Some((Mem::Values { data: any, encode }, host, device)),
                None,
            );
            return Box::new(SharedVecIter::new(data));
        }
        if !self.level.use_disk() {
            tracing::debug!(
                rdd = self.id.0,
                partition = self.id.1,
                "partition exceeds the storage budget; not cached"
            );
            self.release_all();
            self.bm.record_dropped(self.id);
            return Box::new(values.into_iter().chain(it));
        }
        // MEMORY_AND_DISK: the partition goes to a spill file, chunk by chunk.
        let path = self.bm.new_file(self.id);
        let mut w = match BlockWriter::file(self.spill_codec(), &path) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot spill; partition not cached");
                self.release_all();
                self.bm.record_dropped(self.id);
                return Box::new(values.into_iter().chain(it));
            }
        };
        let first = w_chunks(std::mem::take(&mut values), self.sizer);
        self.spill_rest(first, &mut w, it, path)
    }

    /// Streams chunks (already formed) and then the rest of `it` into the file writer `w`.
    fn spill_rest(
        mut self,
        first: Vec<Vec<T>>,
        w: &mut BlockWriter,
        mut it: BoxIter<T>,
        path: std::path::PathBuf,
    ) -> BoxIter<T> {
        self.settle(0, 0);
        let mut pending: Vec<T> = Vec::new();
        let mut chunks = first.into_iter();
        let mut pending_bytes = 0usize;
        loop {
            let chunk = match chunks.next() {
                Some(c) => Some(c),
                None => {
                    let mut done = true;
                    for v in it.by_ref() {
                        pending_bytes += (self.sizer)(&v).0;
                        pending.push(v);
                        if pending_bytes >= CHUNK_BYTES {
                            done = false;
                            break;
                        }
                    }
                    pending_bytes = 0;
                    if done && pending.is_empty() {
                        None
                    } else {
                        Some(std::mem::take(&mut pending))
                    }
                }
            };
            let Some(chunk) = chunk else { break };
            if let Err(e) = w.write_chunk(&chunk) {
                return self.fail_write(e, &path);
            }
            if !self.cover_disk(w.bytes_written()) {
                // The disk budget is full: read back what was written, then the rest uncached.
                tracing::warn!(
                    rdd = self.id.0,
                    partition = self.id.1,
                    "disk budget full; partition not cached"
                );
                let rest: Vec<T> = chunks.flatten().collect();
                return self.abandon_file(w, path, Box::new(rest.into_iter().chain(it)));
            }
        }
        if self.tc.failed() {
            self.release_all();
            let _ = std::fs::remove_file(&path);
            return Box::new(std::iter::empty());
        }
        self.finish_file(w, path)
    }

    fn fail_write(mut self, e: EngineError, path: &std::path::Path) -> BoxIter<T> {
        self.release_all();
        let _ = std::fs::remove_file(path);
        self.tc.fail(e);
        Box::new(std::iter::empty())
    }

    fn abandon_file(
        mut self,
        w: &mut BlockWriter,
        path: std::path::PathBuf,
        rest: BoxIter<T>,
    ) -> BoxIter<T> {
        let w = std::mem::replace(w, BlockWriter::memory(self.spill_codec()));
        self.release_all();
        self.bm.record_dropped(self.id);
        if let Err(e) = w.finish() {
            return self.fail_write(e, &path);
        }
        Box::new(read_once::<T>(&path, &self.tc).chain(rest))
    }

    fn finish_file(mut self, w: &mut BlockWriter, path: std::path::PathBuf) -> BoxIter<T> {
        let w = std::mem::replace(w, BlockWriter::memory(self.spill_codec()));
        match w.finish() {
            Ok(Finished::File { path, bytes }) => {
                if !self.cover_disk(bytes) {
                    self.release_all();
                    self.bm.record_dropped(self.id);
                    return read_once::<T>(&path, &self.tc);
                }
                self.bm.release_disk(self.res_disk - bytes);
                self.res_disk = 0;
                self.bm.put(
                    self.id,
                    self.worker,
                    self.level,
                    None,
                    Some((path.clone(), bytes)),
                );
                match ChunkReader::<T>::open(&path) {
                    Ok(r) => Box::new(BlockIter::new(r, on_error(&self.bm, self.id, &self.tc))),
                    Err(e) => {
                        self.bm.report_lost(self.id, &e);
                        self.tc.fail(e);
                        Box::new(std::iter::empty())
                    }
                }
            }
            Ok(Finished::Memory(_)) => unreachable!("a file writer finishes as a file"),
            Err(e) => self.fail_write(e, &path),
        }
    }

    /// Serialized levels and DISK_ONLY: encode chunk by chunk into memory or a file.
    fn serialized(mut self, mut it: BoxIter<T>) -> BoxIter<T> {
        let on_disk = self.level == StorageLevel::DiskOnly;
        let codec = if on_disk {
            self.spill_codec()
        } else {
            self.bm.settings().rdd_codec
        };
        let mut path = None;
        let mut w = if on_disk {
            let p = self.bm.new_file(self.id);
            match BlockWriter::file(codec, &p) {
                Ok(w) => {
                    path = Some(p);
                    w
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot write a DISK_ONLY block; partition not cached");
                    self.bm.record_dropped(self.id);
                    return it;
                }
            }
        } else {
            BlockWriter::memory(codec)
        };
        let mut pending: Vec<T> = Vec::new();
        let mut pending_bytes = 0usize;
        loop {
            let mut done = true;
            for v in it.by_ref() {
                pending_bytes += (self.sizer)(&v).0;
                pending.push(v);
                if pending_bytes >= CHUNK_BYTES {
                    done = false;
                    break;
                }
            }
            pending_bytes = 0;
            if let Err(e) = w.write_chunk(&pending) {
                if let Some(p) = &path {
                    return self.fail_write(e, p);
                }
                self.release_all();
                self.tc.fail(e);
                return Box::new(std::iter::empty());
            }
            pending.clear();
            let written = w.bytes_written();
            if let Some(p) = path.clone() {
                if !self.cover_disk(written) {
                    tracing::warn!(
                        rdd = self.id.0,
                        partition = self.id.1,
                        "disk budget full; partition not cached"
                    );
                    return self.abandon_file(&mut w, p, it);
                }
            } else if !self.cover(written, 0) {
                if self.level.use_disk() {
                    let p = self.bm.new_file(self.id);
                    if let Err(e) = w.move_to_file(&p) {
                        return self.fail_write(e, &p);
                    }
                    self.settle(0, 0);
                    if !self.cover_disk(written) {
                        return self.abandon_file(&mut w, p, it);
                    }
                    path = Some(p);
                } else {
                    tracing::debug!(
                        rdd = self.id.0,
                        partition = self.id.1,
                        "serialized partition exceeds the storage budget; not cached"
                    );
                    self.release_all();
                    self.bm.record_dropped(self.id);
                    let bytes = match w.finish_memory() {
                        Ok(b) => Arc::new(b),
                        Err(e) => {
                            self.tc.fail(e);
                            return Box::new(std::iter::empty());
                        }
                    };
                    let tc = Rc::clone(&self.tc);
                    return match ChunkReader::<T>::memory(bytes, "uncached block".into()) {
                        Ok(r) => {
                            Box::new(BlockIter::new(r, Box::new(move |e| tc.fail(e))).chain(it))
                        }
                        Err(e) => {
                            self.tc.fail(e);
                            Box::new(std::iter::empty())
                        }
                    };
                }
            }
            if done {
                break;
            }
        }
        if self.tc.failed() {
            self.release_all();
            if let Some(p) = &path {
                let _ = std::fs::remove_file(p);
            }
            return Box::new(std::iter::empty());
        }
        if let Some(p) = path {
            return self.finish_file(&mut w, p);
        }
        let bytes = match w.finish_memory() {
            Ok(b) => Arc::new(b),
            Err(e) => {
                self.release_all();
                self.tc.fail(e);
                return Box::new(std::iter::empty());
            }
        };
        let len = bytes.len() as u64;
        if !self.cover(len, 0) {
            self.release_all();
            self.bm.record_dropped(self.id);
        } else {
            self.settle(len, 0);
            self.bm.put(
                self.id,
                self.worker,
                self.level,
                Some((Mem::Bytes(Arc::clone(&bytes)), len, 0)),
                None,
            );
        }
        match ChunkReader::<T>::memory(
            bytes,
            format!("memory block rdd_{}_{}", self.id.0, self.id.1),
        ) {
            Ok(r) => Box::new(BlockIter::new(r, on_error(&self.bm, self.id, &self.tc))),
            Err(e) => {
                self.tc.fail(e);
                Box::new(std::iter::empty())
            }
        }
    }
}

/// Cuts values into chunks of about [`CHUNK_BYTES`].
fn w_chunks<T>(values: Vec<T>, sizer: Sizer<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for v in values {
        bytes += sizer(&v).0;
        cur.push(v);
        if bytes >= CHUNK_BYTES {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Encodes a deserialized block, chunk by chunk (a `MEMORY_AND_DISK` block being evicted to a
/// file, or a block fetched by another process).
fn encode_values<T: Data>(
    values: &[T],
    mut w: BlockWriter,
    sizer: Sizer<T>,
) -> crate::error::Result<Finished> {
    let (mut start, mut bytes) = (0, 0);
    for (i, v) in values.iter().enumerate() {
        bytes += sizer(v).0;
        if bytes >= CHUNK_BYTES {
            w.write_chunk(&values[start..=i])?;
            start = i + 1;
            bytes = 0;
        }
    }
    w.write_chunk(&values[start..])?;
    w.finish()
}
