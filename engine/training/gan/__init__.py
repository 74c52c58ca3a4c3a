"""GAN bars (the Liu & Huo report): CNN generator and Bi-LSTM baseline generator against a
bi-LSTM discriminator, training, ONNX export of the generators, and their Table 1 metrics."""
