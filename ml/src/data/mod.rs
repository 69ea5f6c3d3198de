//! Data loading: minibatches, IDX and CSV readers, batching iterators and normalizers.
