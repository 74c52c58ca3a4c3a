"""LSTM-VAE for style morphing (the schuBERT & paGANini report's best model): data windows,
the torch module, training, ONNX export (encoder, decoder init, decoder step) and evaluation."""
