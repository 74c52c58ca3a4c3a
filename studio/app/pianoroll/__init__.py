"""The pianoroll editor: keyboard, ruler, note canvas and velocity lane over one `ViewState`.

`editor.PianoRollEditor` composes the widgets; `view.ViewState` maps ticks/pitches to pixels;
`canvas.NoteCanvas` paints only what is visible and turns mouse gestures into undo commands.
"""
