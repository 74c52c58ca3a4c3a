"""LSTM continuation (the Rajaraman slides): next-frame LSTM, 2 x 256, dropout 0.5, sigmoid + BCE;
bar-after-bar continuation and the JSB-like next-frame benchmark."""
