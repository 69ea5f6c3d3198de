//! Minibatch RDDs for distributed training: from in-memory data laid out so that N workers
//! with batch B/N each see exactly the examples one worker with batch B would (DDP's sharding),
//! from rows of any engine source (CSV, Parquet, JSON), and DL4J's *export* approach:
//! minibatches written once as files to a storage URL, training then reading an RDD of paths.

use ember_engine::{Context, Rdd};
use ember_storage::{Location, StorageConfig};
use ndarray::Array2;

use crate::data::MiniBatch;
use crate::error::{MlError, Result};

/// When training repartitions its minibatch RDD to one partition per worker (DL4J's
/// `RepartitionStrategy`). Repartitioning deals minibatches round-robin, so every worker gets
/// the same number (give or take one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Repartition {
    /// Always, even when the partition count already equals the number of workers.
    Always,
    /// Never: the RDD is used as it is (more partitions than workers is then an error).
    Never,
    /// Only when the partition count differs from the number of workers (the default).
    #[default]
    WhenCountDiffers,
}

impl Repartition {
    /// `rdd` with one partition per worker, as this strategy says.
    pub fn apply<T: ember_engine::Data>(self, rdd: &Rdd<T>, workers: usize) -> Result<Rdd<T>> {
        let differs = rdd.num_partitions() != workers;
        Ok(match self {
            Repartition::Always => rdd.repartition(workers)?,
            Repartition::WhenCountDiffers if differs => rdd.repartition(workers)?,
            _ => rdd.clone(),
        })
    }
}

/// The minibatches of `data` for `parts` workers: global batch `s` holds examples
/// `s*B..(s+1)*B` in order (the last one the remainder); worker `w` gets the `w`-th of `parts`
/// consecutive slices of each global batch, as partition `w` (preferably computed on worker
/// `w`). Dense data parallel on these equals one worker training on batches of `B`.
pub fn sharded_minibatches(
    ctx: &Context,
    data: &MiniBatch,
    global_batch: usize,
    parts: usize,
) -> Result<Rdd<MiniBatch>> {
    if global_batch == 0 {
        return Err(MlError::Config(
            "batch size must be at least 1 (the global batch of all workers together)".into(),
        ));
    }
    if parts == 0 || parts > global_batch {
        return Err(MlError::Config(format!(
            "{parts} shards of a global batch of {global_batch}: need 1 to {global_batch} shards"
        )));
    }
    let mut shards: Vec<Vec<MiniBatch>> = (0..parts).map(|_| Vec::new()).collect();
    let mut start = 0;
    while start < data.len() {
        let end = (start + global_batch).min(data.len());
        let len = end - start;
        for (w, shard) in shards.iter_mut().enumerate() {
            let (a, b) = (start + w * len / parts, start + (w + 1) * len / parts);
            if b > a {
                shard.push(data.slice(a, b));
            }
        }
        start = end;
    }
    let parts: Vec<(Vec<MiniBatch>, Vec<usize>)> = shards
        .into_iter()
        .enumerate()
        .map(|(w, s)| (s, vec![w]))
        .collect();
    Ok(ctx.make_rdd(parts)?)
}

/// Minibatches of up to `batch_size` rows from an RDD of `(features, labels)` rows, within each
/// partition (rows of any source: CSV, Parquet, JSON lines mapped to vectors). Rows whose widths
/// differ from the partition's first row fail the task naming the row.
pub fn rows_to_minibatches(
    rows: &Rdd<(Vec<f32>, Vec<f32>)>,
    batch_size: usize,
) -> Result<Rdd<MiniBatch>> {
    if batch_size == 0 {
        return Err(MlError::Config("batch size must be at least 1".into()));
    }
    Ok(rows.map_partitions(move |it| {
        let mut out = Vec::new();
        let mut chunk: Vec<(Vec<f32>, Vec<f32>)> = Vec::with_capacity(batch_size);
        let mut flush = |chunk: &mut Vec<(Vec<f32>, Vec<f32>)>| {
            if chunk.is_empty() {
                return;
            }
            let (nf, nl) = (chunk[0].0.len(), chunk[0].1.len());
            let mut f = Vec::with_capacity(chunk.len() * nf);
            let mut l = Vec::with_capacity(chunk.len() * nl);
            for (i, (x, y)) in chunk.iter().enumerate() {
                assert!(
                    x.len() == nf && y.len() == nl,
                    "row {i} of a minibatch has {} features and {} labels, the first row {nf} and {nl}",
                    x.len(),
                    y.len()
                );
                f.extend_from_slice(x);
                l.extend_from_slice(y);
            }
            let rows = chunk.len();
            let f = Array2::from_shape_vec((rows, nf), f).expect("sizes checked");
            let l = Array2::from_shape_vec((rows, nl), l).expect("sizes checked");
            out.push(MiniBatch::new(f, l).expect("row counts equal"));
            chunk.clear();
        };
        for row in it {
            chunk.push(row);
            if chunk.len() == batch_size {
                flush(&mut chunk);
            }
        }
        flush(&mut chunk);
        Box::new(out.into_iter())
    }))
}

/// Magic bytes that open an exported minibatch file.
const EXPORT_MAGIC: &[u8; 8] = b"EMBERMB1";

/// The bytes of an exported minibatch: magic, CRC-32 of the body, body (bincode).
pub fn encode_minibatch(batch: &MiniBatch) -> Result<Vec<u8>> {
    let body = bincode::serialize(batch)
        .map_err(|e| MlError::Config(format!("cannot serialize a minibatch: {e}")))?;
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(EXPORT_MAGIC);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads an exported minibatch, checking its magic and checksum; `url` names it in errors.
pub fn decode_minibatch(bytes: &[u8], url: &str) -> Result<MiniBatch> {
    let corrupt = |what: String| MlError::Corrupt {
        offset: 0,
        what: format!("{url}: {what}"),
    };
    if bytes.len() < 12 || &bytes[..8] != EXPORT_MAGIC {
        return Err(corrupt("not an exported minibatch (bad magic)".into()));
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let body = &bytes[12..];
    if crc32fast::hash(body) != crc {
        return Err(corrupt(
            "checksum mismatch (truncated or damaged file)".into(),
        ));
    }
    bincode::deserialize(body).map_err(|e| corrupt(format!("cannot decode: {e}")))
}

/// Reads one exported minibatch from a storage URL.
pub fn read_minibatch(url: &str, config: &StorageConfig) -> Result<MiniBatch> {
    let bytes = Location::resolve(url, config)?.read_all()?;
    decode_minibatch(&bytes, url)
}

/// DL4J's export approach: writes every minibatch of `batches` as its own file under the
/// directory URL `dir` (`part-PPPPP-BBBBBB.mb`), once, and returns their URLs in partition
/// order. Training then reads an `Rdd<String>` of these paths
/// ([`super::DistributedNetwork::fit_paths`]), so the minibatches are never recomputed or held
/// in memory between epochs.
pub fn export_minibatches(batches: &Rdd<MiniBatch>, dir: &str) -> Result<Vec<String>> {
    let config = batches.context().conf().storage_config();
    let dir = dir.trim_end_matches('/').to_string();
    let written = batches
        .map_partitions_with_index(move |part, it| {
            let mut urls = Vec::new();
            for (i, b) in it.enumerate() {
                let url = format!("{dir}/part-{part:05}-{i:06}.mb");
                let outcome = encode_minibatch(&b).and_then(|bytes| {
                    Location::resolve(&url, &config)?
                        .put(bytes)
                        .map_err(MlError::from)
                });
                urls.push(outcome.map(|_| url).map_err(|e| e.to_string()));
            }
            Box::new(urls.into_iter())
        })
        .collect()?;
    written
        .into_iter()
        .map(|r| r.map_err(|e| MlError::Config(format!("exporting minibatches: {e}"))))
        .collect()
}
