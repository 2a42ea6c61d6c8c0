"""Fine-tuning: a segmenter started from pretrained weights (or none), best kept by val mIoU."""
