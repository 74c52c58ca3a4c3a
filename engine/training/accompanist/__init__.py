"""Training of the accompanist: the VAE-RNN of the PopMusicNet report (section 4.3), one bar per
latent step. Torch lives here only; the runtime is engine.models.accompanist (ONNX Runtime).

Modules: config (dataclasses), data (songs -> key-normalised bar tensors and sequences), model
(bar VAEs and RNNs), train (the three stages under DDP), export (ONNX graphs + card), baselines
and evaluate (frame-level NLL on the test split), cli (`popmusicnet train accompanist`).
"""
