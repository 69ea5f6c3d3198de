//! Evaluation: classification, ROC and regression metrics, mergeable across partitions.
