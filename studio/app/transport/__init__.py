"""Transport: play/stop/record, loop, tempo, meter, metronome, count-in, and the note inputs
(on-screen keys, the computer keyboard as a piano, a MIDI keyboard)."""
