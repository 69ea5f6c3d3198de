//! Tensors report every byte they own to the engine's block manager: the host buffer as heap
//! bytes and a GPU buffer as device bytes, so a cached RDD of tensors is charged what it really
//! holds (the accounting Spark gets wrong for off-heap tensor memory).

use ember_engine::blocks::SizeOf;

use super::Tensor;

impl SizeOf for Tensor {
    fn heap_bytes(&self) -> usize {
        self.host_bytes() - std::mem::size_of::<Tensor>()
    }

    fn device_bytes(&self) -> usize {
        Tensor::device_bytes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_engine::prelude::*;

    #[test]
    fn cached_tensors_are_charged_their_buffers() {
        let conf = Conf::new().with("ember.master", "local[2]").unwrap();
        let (report_bytes, sum) = ember_engine::run(conf, |ctx| {
            // Eight tensors of 256k f32 values (1 MiB each).
            let tensors = ctx
                .range(0, 8, 1, 4)
                .unwrap()
                .map(|i| Tensor::from_vec(&[512, 512], vec![i as f32; 512 * 512]).unwrap())
                .cache();
            let sum = tensors
                .map(|t| t.to_array().sum() as f64)
                .fold(0.0, |a, b| a + b)
                .unwrap();
            let report = ctx.storage_report();
            let host: u64 = report
                .rdds
                .iter()
                .filter(|r| r.rdd == tensors.id())
                .map(|r| r.host_bytes)
                .sum();
            // A job is a barrier: no worker drops its cached blocks (with `tensors`) before every
            // worker has read the report.
            ctx.range(0, 1, 1, 1).unwrap().count().unwrap();
            (host, sum)
        })
        .unwrap();
        assert_eq!(sum, (0..8).map(|i| i as f64 * 262_144.0).sum::<f64>());
        // Worker 0's view of the process-wide store: all 8 MiB of buffers are counted.
        assert!(
            report_bytes >= 8 * 1024 * 1024,
            "charged {report_bytes} bytes"
        );
    }
}
