"""`popmusicnet live`: play a MIDI keyboard, hear the melody at once and the accompaniment on the beat.

Headless (no Qt): for musicians without the GUI and for the end-to-end tests. Prints a live stats
line and a summary on Ctrl-C / SIGTERM / --duration. Exit codes: 0 ok, 2 bad input or no device,
1 when the audio server went away mid-performance (the recording is still written).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

NAME = "live"
HELP = "play a MIDI keyboard with live machine accompaniment (JACK or the platform's audio)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--midi-in", metavar="PORT",
                   help="MIDI input port: index or part of its name (default: a virtual input "
                        "port other programs connect to; 'none' for no MIDI input)")
    p.add_argument("--list-ports", action="store_true", help="list MIDI input ports and exit")
    p.add_argument("--midi-api", default="auto", choices=["auto", "jack", "alsa", "coremidi",
                                                           "winmm"],
                   help="MIDI API (default auto: JACK when a server runs, else native)")
    p.add_argument("--midi-out", action="store_true",
                   help="open a virtual MIDI output with the accompaniment and MIDI clock")
    p.add_argument("--midi-out-melody", action="store_true",
                   help="also send the played melody to the MIDI output")
    p.add_argument("--bpm", type=float, default=100.0, help="tempo (default 100)")
    p.add_argument("--meter", default="4/4", help="time signature: 4/4, 3/4, 6/8... (default 4/4)")
    p.add_argument("--model", help="accompanist model name or card path (default: the bundled "
                                   "one); 'band' for chords, bass and drums")
    p.add_argument("--style", choices=["auto", "folk", "pop", "waltz", "ballad"],
                   help="with --model band: the band's style (default auto: by the meter)")
    p.add_argument("--providers", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="ONNX Runtime provider (default cpu: faster than a GPU for models this "
                        "small, and no GPU here; the one used is reported)")
    p.add_argument("--no-accompaniment", action="store_true", help="melody and metronome only")
    p.add_argument("--temperature", type=float, help="sampling temperature of the accompanist")
    p.add_argument("--key", help="the key you will play in ('D major', 'F# minor', 'Am'); "
                                 "default: estimated from the first bars you play")
    p.add_argument("--record", metavar="OUT.mid", help="save the performance as a MIDI file")
    p.add_argument("--backend", default="auto",
                   help="audio: auto (JACK when running, else the platform's), jack, null "
                        "(silent), or a FluidSynth driver name (pulseaudio, alsa, coreaudio...)")
    p.add_argument("--buffer", type=int, default=128, help="audio period in frames (default 128)")
    p.add_argument("--rate", type=int, default=48000, help="sample rate (default 48000)")
    p.add_argument("--soundfont", help="SoundFont (.sf2) to play with (default: found one)")
    p.add_argument("--melody-soundfont", metavar="SF2", help="SoundFont for the melody only")
    p.add_argument("--accompaniment-soundfont", metavar="SF2",
                   help="SoundFont for the accompaniment only")
    p.add_argument("--programs", metavar="P,P,...",
                   help="GM programs of the accompaniment parts (default: the model's)")
    p.add_argument("--no-reverb", action="store_true", help="dry sound (measurements)")
    p.add_argument("--load-thread", action="store_true",
                   help="run a busy pure-Python thread beside the engine, as the studio's GUI "
                        "would (benchmarks and tests of the thread design)")
    p.add_argument("--program", type=int, default=0, help="GM program of the melody (default 0)")
    p.add_argument("--no-metronome", action="store_true", help="no metronome clicks")
    p.add_argument("--count-in", type=int, default=1, metavar="BARS",
                   help="bars of clicks before the first bar (default 1)")
    p.add_argument("--lookahead", type=float, default=1.0, metavar="BEATS",
                   help="run the accompanist this many beats before each bar (default 1)")
    p.add_argument("--thru", default="auto", choices=["auto", "synth", "python", "off"],
                   help="melody thru: synth = JACK port straight into FluidSynth (auto picks it "
                        "when possible), python = from the MIDI callback")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="stop after this long (default: until Ctrl-C)")
    p.add_argument("--client-name", default="popmusicnet", help="JACK/MIDI client name")
    p.add_argument("--quiet", action="store_true", help="no live stats line")


def _check(args) -> tuple[int, int]:
    from engine.errors import UserInputError
    from engine.realtime.clock import parse_meter

    try:
        meter = parse_meter(args.meter)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    if not 20 <= args.bpm <= 400:
        raise UserInputError(f"--bpm must be in range 20..400, got {args.bpm:g}")
    if args.buffer < 16 or args.buffer > 8192:
        raise UserInputError(f"--buffer must be in range 16..8192 frames, got {args.buffer}")
    if args.rate not in (22050, 32000, 44100, 48000, 88200, 96000):
        raise UserInputError(f"--rate must be a common sample rate (44100, 48000...), "
                             f"got {args.rate}")
    if args.count_in < 0 or args.count_in > 8:
        raise UserInputError(f"--count-in must be in range 0..8, got {args.count_in}")
    if args.lookahead <= 0 or args.lookahead > 4:
        raise UserInputError(f"--lookahead must be in (0, 4] beats, got {args.lookahead:g}")
    if not 0 <= args.program <= 127:
        raise UserInputError(f"--program must be in range 0..127, got {args.program}")
    from engine.music import parse_key
    from studio.cli.options import parsed

    parsed("--key", parse_key, args.key)  # the engine reads it again: checked here, exit 2
    if args.programs:
        try:
            progs = tuple(int(x) for x in args.programs.split(","))
        except ValueError:
            raise UserInputError(f"--programs must be comma-separated numbers, "
                                 f"got {args.programs!r}") from None
        if not all(0 <= x <= 127 for x in progs):
            raise UserInputError(f"--programs must be in range 0..127, got {args.programs}")
        args.programs = progs
    for opt in ("soundfont", "melody_soundfont", "accompaniment_soundfont"):
        path = getattr(args, opt)
        if path is not None:
            from engine.synth.soundfont import find_soundfont

            find_soundfont(path)  # SoundfontError (exit 2) names the file
    if args.duration is not None and args.duration <= 0:
        raise UserInputError(f"--duration must be positive, got {args.duration:g}")
    if args.record:
        from engine.fileio import check_writable

        check_writable(args.record)
    return meter


def busy_python(stop: threading.Event) -> None:
    """Pure-Python work that holds the GIL in 5 ms slices, like a GUI thread redrawing."""
    x = 0
    while not stop.is_set():
        for i in range(20_000):
            x = (x * 31 + i) % 1_000_003


def run(args: argparse.Namespace) -> int:
    from engine.errors import DeviceError
    from engine.realtime.engine import LiveConfig, LiveEngine

    if args.list_ports:
        from engine.realtime.midi import list_input_ports

        ports = list_input_ports(args.midi_api)
        for i, name in enumerate(ports):
            print(f"{i}: {name}")
        if not ports:
            print("no MIDI input ports")
        return 0
    meter = _check(args)
    if args.style:
        from engine.errors import UserInputError
        from engine.models.band import is_band_model

        if not is_band_model(args.model):
            raise UserInputError("--style needs --model band (the choir has no styles)")
        args.model = f"band:{args.style}" if args.model == "band" else args.model
    use_midi = not (args.midi_in and args.midi_in.lower() == "none")
    cfg = LiveConfig(bpm=args.bpm, meter=meter, lookahead_beats=args.lookahead,
                     count_in_bars=args.count_in, metronome=not args.no_metronome,
                     model=args.model, accompany=not args.no_accompaniment,
                     providers=args.providers, temperature=args.temperature, key=args.key,
                     backend=args.backend, sample_rate=args.rate, period=args.buffer,
                     soundfont=args.soundfont, reverb=not args.no_reverb,
                     melody_soundfont=args.melody_soundfont,
                     accompaniment_soundfont=args.accompaniment_soundfont,
                     programs=args.programs or None, melody_program=args.program,
                     midi_in=args.midi_in if use_midi else None, use_midi_in=use_midi,
                     midi_api=args.midi_api, midi_out=args.midi_out,
                     midi_out_melody=args.midi_out_melody, thru=args.thru,
                     client_name=args.client_name)
    engine = LiveEngine(cfg)
    try:
        engine.start()
    except DeviceError as exc:
        if use_midi and args.midi_in is None and "MIDI" in str(exc):
            # No MIDI system at all and no port asked for: play on without input, say so.
            print(f"popmusicnet live: {exc}; continuing without MIDI input", file=sys.stderr)
            cfg.use_midi_in = False
            engine = LiveEngine(cfg)
            engine.start()
        else:
            raise
    stop = threading.Event()
    if args.load_thread:
        threading.Thread(target=busy_python, args=(stop,), name="load", daemon=True).start()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    t0 = time.monotonic()
    tty = sys.stdout.isatty()
    st = engine.status()
    print(f"live: {cfg.bpm:g} BPM {args.meter}, audio {engine.synth.name} "
          f"{engine.synth.sample_rate} Hz / {engine.synth.period} frames, thru {engine.thru}, "
          f"MIDI in {st.midi_in or (engine.midi_input.state if engine.midi_input else 'none')}, "
          f"model {st.model or '-'} ({st.accompaniment}), provider {st.provider or '-'}",
          flush=True)
    if engine.midi_input is not None and engine.midi_input.virtual_port:
        print(f"live: connect your keyboard to the MIDI input {engine.midi_input.virtual_port}",
              flush=True)
    if st.model and not args.no_accompaniment:
        print(f"live: key {args.key}" if args.key else
              "live: key estimated from the first bars you play (--key names it: the "
              "accompaniment is then in it from the first bar)", flush=True)
    last_msg = ""
    try:
        while not stop.is_set():
            if engine.wait(0.25):
                break
            if args.duration is not None and time.monotonic() - t0 >= args.duration:
                break
            st = engine.status()
            if not args.quiet:
                if tty:
                    print("\r" + st.line()[:150].ljust(150), end="", flush=True)
                elif time.monotonic() - t0 >= 1.0 and int((time.monotonic() - t0) * 4) % 4 == 0:
                    print(st.line(), flush=True)
            if st.message and st.message != last_msg:
                last_msg = st.message
                print(("\n" if tty else "") + f"live: {st.message}", flush=True)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        reason = engine.stopped_reason
        st = engine.status()
        song = engine.recorded_song()
        engine.stop()
    if tty:
        print()
    inf = sorted(engine.stats.inference_ms)
    timing = (f"inference p50 {inf[len(inf) // 2]:.2f} ms "
              f"p99 {inf[min(len(inf) - 1, int(0.99 * len(inf)))]:.2f} ms" if inf
              else "inference: no bar was run")
    print(f"summary: {time.monotonic() - t0:.1f} s, bars {max(st.bar + 1, 0)}, "
          f"accompanied {st.bars_accompanied}, late={st.late} skipped={st.skipped} "
          f"xruns={st.xruns} notes in {st.notes_in} dropped {st.dropped}, "
          f"{timing}, "
          f"provider {st.provider or '-'}, accompaniment {st.accompaniment}"
          + (f", stopped: {reason}" if reason else ""), flush=True)
    if args.record:
        from engine.midi_io import write_midi

        path = write_midi(song, args.record)
        print(f"recorded {sum(len(t.notes) for t in song.tracks)} notes "
              f"({len(song.tracks[0].notes)} played) to {path}", flush=True)
    return 1 if reason else 0
