//! Iterating over a data set in minibatches, in order or in a seeded random order.

use super::{DataError, MiniBatch};

/// An iterator over the minibatches of a data set; made by [`MiniBatch::batches`] and
/// [`MiniBatch::shuffled_batches`]. Every example is visited once per pass; the last minibatch
/// holds the remainder unless [`Batches::drop_last`] is set.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    data: &'a MiniBatch,
    order: Option<Vec<usize>>,
    batch_size: usize,
    position: usize,
    drop_last: bool,
}

impl<'a> Batches<'a> {
    pub(crate) fn new(
        data: &'a MiniBatch,
        batch_size: usize,
        order: Option<Vec<usize>>,
    ) -> Result<Self, DataError> {
        if batch_size == 0 {
            return Err(DataError::Shape("batch size must be at least 1".into()));
        }
        Ok(Batches {
            data,
            order,
            batch_size,
            position: 0,
            drop_last: false,
        })
    }

    /// Skips a last minibatch smaller than the batch size.
    pub fn drop_last(mut self) -> Self {
        self.drop_last = true;
        self
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn end(&self) -> usize {
        if self.drop_last {
            self.data.len() - self.data.len() % self.batch_size
        } else {
            self.data.len()
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = MiniBatch;

    fn next(&mut self) -> Option<MiniBatch> {
        let end = self.end();
        if self.position >= end {
            return None;
        }
        let stop = (self.position + self.batch_size).min(end);
        let batch = match &self.order {
            Some(order) => self.data.select_unchecked(&order[self.position..stop]),
            None => self.data.slice(self.position, stop),
        };
        self.position = stop;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self
            .end()
            .saturating_sub(self.position)
            .div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}
