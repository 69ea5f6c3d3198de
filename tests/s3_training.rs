//! Distributed training against a real S3-protocol server (`s3s-fs` on 127.0.0.1, installed by
//! `.ci/setup.d/40-s3s.sh`): minibatches exported to a bucket and trained from their paths give
//! the parameters training on the same batches in memory gives; checkpoints written to a bucket
//! resume a fresh network after the finished epoch; Parquet in a bucket reads as minibatches.

#[path = "../ml/tests/common/mod.rs"]
mod common;
#[path = "../storage/tests/common/mod.rs"]
mod s3;

use common::{momentum, synthetic, tiny_net, CLASSES, FEATURES};
use ember::engine::{Batch, Conf, Context, Rdd, SaveMode};
use ember::ml::data::MiniBatch;
use ember::ml::distributed::{
    export_minibatches, parquet_minibatches, sharded_minibatches, ColumnarExamples, DataParallel,
    DistributedNetwork, FeatureColumns, LabelColumns,
};
use ember::ml::Result;
use s3::S3Server;

const ROWS: usize = 240;
const B: usize = 24;

/// Two local workers talking to `server`.
fn conf(server: &S3Server) -> Conf {
    server
        .settings()
        .iter()
        .fold(common::conf(2), |c, (k, v)| c.with(k, v).unwrap())
}

fn on_each_worker<R: Send + 'static>(
    server: &S3Server,
    driver: impl Fn(&Context) -> Result<R> + Send + Sync + 'static,
) -> Vec<R> {
    ember::engine::run_all(conf(server), driver)
        .unwrap()
        .into_iter()
        .collect::<Result<Vec<R>>>()
        .unwrap()
}

fn net(ctx: &Context) -> Result<DistributedNetwork> {
    DistributedNetwork::new(ctx, tiny_net(3), momentum(0.1), DataParallel::default())
}

/// Each worker's exported files, as the partition it trains on.
fn paths_rdd(ctx: &Context, urls: &[String]) -> Result<Rdd<String>> {
    let parts = (0..ctx.num_workers())
        .map(|w| {
            let mine = format!("part-{w:05}-");
            let files = urls.iter().filter(|u| u.contains(&mine)).cloned().collect();
            (files, vec![w])
        })
        .collect();
    Ok(ctx.make_rdd(parts)?)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn minibatches_exported_to_s3_train_as_the_same_batches_in_memory() {
    let server = S3Server::start();
    let dir = format!("{}/export", server.bucket("training"));
    let results = on_each_worker(&server, move |ctx| {
        let data = synthetic(ROWS);
        let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?.cache();
        let urls = export_minibatches(&batches, &dir)?;
        let mut in_memory = net(ctx)?;
        in_memory.fit(&batches)?;
        let mut from_files = net(ctx)?.with_prefetch(2);
        let report = from_files.fit_paths(&paths_rdd(ctx, &urls)?)?;
        let a = in_memory.network().params().to_vec();
        let b = from_files.network().params().to_vec();
        Ok((urls, report.examples, a, b))
    });
    for (w, (urls, examples, a, b)) in results.into_iter().enumerate() {
        assert_eq!(urls.len(), 2 * ROWS / B, "one object per minibatch");
        assert!(
            urls.iter().all(|u| u.starts_with("s3://training/export/")),
            "{urls:?}"
        );
        assert_eq!(examples, ROWS as u64);
        assert_eq!(bits(&a), bits(&b), "worker {w}: the same parameters");
    }
}

#[test]
fn checkpoints_in_s3_resume_a_fresh_network_after_the_finished_epoch() {
    let server = S3Server::start();
    let dir = format!("{}/ckpt", server.bucket("training"));
    let results = on_each_worker(&server, move |ctx| {
        let data = synthetic(ROWS);
        let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?.cache();
        let mut first = net(ctx)?.with_checkpoints(&dir, 3)?;
        first.fit(&batches)?;
        let trained = first.network().params().to_vec();
        let state = first.optimizer().state().to_vec();
        drop(first);
        let fresh = net(ctx)?.with_checkpoints(&dir, 3)?;
        let resumed = fresh.network().params().to_vec();
        let resumed_state = fresh.optimizer().state().to_vec();
        Ok((fresh.epoch(), trained, state, resumed, resumed_state))
    });
    for (w, (epoch, trained, state, resumed, resumed_state)) in results.into_iter().enumerate() {
        assert_eq!(epoch, 1, "worker {w}: resumed after epoch 0");
        assert_eq!(bits(&trained), bits(&resumed), "worker {w}: parameters");
        assert_eq!(
            bits(&state),
            bits(&resumed_state),
            "worker {w}: optimizer state"
        );
    }
}

#[test]
fn parquet_in_s3_reads_as_minibatches_of_its_rows() {
    use ember::storage::arrow_array::builder::{Float32Builder, ListBuilder};
    use ember::storage::arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use ember::storage::arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    let server = S3Server::start();
    let url = format!("{}/table", server.bucket("lake"));
    let results = on_each_worker(&server, move |ctx| {
        let data = synthetic(ROWS);
        let mut pixels = ListBuilder::new(Float32Builder::new());
        let mut labels = Vec::new();
        for r in 0..ROWS {
            pixels
                .values()
                .append_slice(data.features().row(r).as_slice().unwrap());
            pixels.append(true);
            let class = data.labels().row(r).iter().position(|&v| v == 1.0).unwrap();
            labels.push(class as i64);
        }
        let schema = Schema::new(vec![
            Field::new(
                "pixels",
                DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
                true,
            ),
            Field::new("label", DataType::Int64, false),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(pixels.finish()),
            Arc::new(Int64Array::from(labels)),
        ];
        let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
        ctx.parallelize(vec![Batch(batch)], 1)?
            .save_as_parquet(&url, SaveMode::ErrorIfExists)?;
        let spec = ColumnarExamples::new(
            FeatureColumns::List("pixels".into()),
            LabelColumns::ClassIndex {
                column: "label".into(),
                classes: CLASSES,
            },
        );
        let read: Vec<MiniBatch> = parquet_minibatches(ctx, &url, &spec, 50)?.collect()?;
        Ok((data, read))
    });
    let (data, read) = &results[0];
    assert_eq!(
        read.iter().map(MiniBatch::len).collect::<Vec<_>>(),
        [50, 50, 50, 50, 40]
    );
    let mut r = 0;
    for b in read {
        assert_eq!(b.features().ncols(), FEATURES);
        for i in 0..b.len() {
            assert_eq!(b.features().row(i), data.features().row(r));
            assert_eq!(b.labels().row(i), data.labels().row(r));
            r += 1;
        }
    }
}

#[test]
fn idx_files_in_s3_read_as_the_local_copy() {
    let server = S3Server::start();
    let cfg = server.config();
    let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/mnist/t10k-labels-idx1-ubyte.gz");
    let url = format!("{}/mnist/t10k-labels-idx1-ubyte.gz", server.bucket("data"));
    ember::storage::Location::resolve(&url, &cfg)
        .unwrap()
        .put(std::fs::read(&local).unwrap())
        .unwrap();
    let remote = ember::ml::data::read_idx_at(&url, &cfg).unwrap();
    let here = ember::ml::data::read_idx(&local).unwrap();
    assert_eq!(remote.dims, vec![10_000]);
    assert_eq!(remote.as_u8(), here.as_u8());
    // A missing object is a typed error naming it.
    let err = ember::ml::data::read_idx_at(&format!("{url}.missing"), &cfg).unwrap_err();
    assert!(err.to_string().contains(".missing"), "{err}");
}
