"""The multi-style corpus: selection, grouping, quota splits, views (top voice, pulse), cache."""

from __future__ import annotations

import pytest

from engine.music import MeterChange, Note, Song, Track
from engine.training.data.corpus import quota_split

pytest.importorskip("music21")

from engine.training.data import styles  # noqa: E402
from engine.training.data.styles import Item  # noqa: E402


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 10, 17, 49, 200])
def test_quota_split(n):
    groups = [f"g{i}" for i in range(n)]
    table = quota_split(groups)
    assert set(table) == set(groups)
    counts = {s: sum(v == s for v in table.values()) for s in ("train", "valid", "test")}
    assert counts["train"] >= 1
    if n >= 7:
        assert counts["valid"] >= 3 and counts["test"] >= 3
    if n >= 100:
        assert abs(counts["train"] / n - 0.6) < 0.02
    assert quota_split(list(reversed(groups))) == table  # order of input does not matter


def test_norm_title_and_join_by_title():
    assert styles.norm_title("LANIGAN'S BALL -- JIG") == "lanigan s ball"
    assert styles.norm_title("The Lanigan's Ball") == "lanigan s ball"
    assert styles.norm_title("Untitled") == ""
    items = [Item("o.abc", 1, "o#1", "oneill:1", "Lanigan's Ball"),
             Item("r.abc", 1, "r", "ryan:r", "LANIGAN'S BALL -- JIG"),
             Item("o2.abc", 1, "o2#1", "oneill:1", "Lanigan's Ball (2nd setting)"),
             Item("a.abc", 3, "a#3", "aird:a#3", "Untitled"),
             Item("a.abc", 4, "a#4", "aird:a#4", "Untitled")]
    joined = styles._join_by_title(items)
    groups = [it.group for it in joined]
    assert groups[0] == groups[1] == groups[2] == "irish:oneill:1"  # title, then tune number
    assert groups[3] != groups[4]  # generic titles join nothing


def test_irish_items_dedupe_oneill_numbers():
    items = styles._items_irish()
    oneill = [it.number for it in items if it.path.startswith("oneills1850/")]
    assert len(oneill) == len(set(oneill)) > 1500  # overlapping files: one copy per number
    assert any(it.path.startswith("ryansMammoth/") for it in items)
    assert any(it.path.startswith("airdsAirs/") for it in items)


def test_sources_exclude_test_and_variant_files():
    german = styles.SOURCES["german_folk"]()
    assert len(german) == 5979
    assert not any("test" in it.path or "variant" in it.path or "han" in it.path
                   for it in german)
    pal = styles.SOURCES["palestrina"]()
    by_id = {it.id: it.group for it in pal}
    assert by_id["palestrina/Credo_63_a.krn"] == "palestrina:mass63"
    classical = styles.SOURCES["classical"]()
    groups = {it.group for it in classical}
    assert "classical:beethoven/opus59no1" in groups


def test_select_items_takes_whole_groups_in_md5_order():
    items = [Item("p", None, f"i{i}", f"g{i % 4}") for i in range(12)]
    chosen = styles.select_items(items, 6)
    assert len(chosen) == 6
    first_groups = []
    for it in chosen:
        if it.group not in first_groups:
            first_groups.append(it.group)
    assert len(first_groups) == 2  # 3 items per group: two whole groups
    assert styles.select_items(items, None) == styles.select_items(list(reversed(items)), None)


def test_load_style_parses_caps_and_caches(tmp_path, monkeypatch):
    pieces = styles.load_style("german_folk", tmp_path, max_per_class=4)
    assert len(pieces) == 4
    for p in pieces:
        assert p.label == "german_folk" and p.meta["half_note_pulse"] is False
        assert len(p.song.tracks) == 1 and p.song.tracks[0].role == "melody"
        assert p.song.tracks[0].program == 73 and p.meter in {"2/4", "3/4", "4/4", "6/8", "3/8"}
        assert p.meta["median_duration_ql"] > 0
    assert len({p.split for p in pieces}) == 3  # small classes still get valid and test
    monkeypatch.setattr(styles, "build_style", lambda *a, **k: pytest.fail("not cached"))
    again = styles.load_style("german_folk", tmp_path, max_per_class=4)
    assert [p.song for p in again] == [p.song for p in pieces]


def test_palestrina_is_flagged_half_note_pulse(tmp_path, monkeypatch):
    one = [Item("palestrina/Agnus_II_78.krn", None, "palestrina/Agnus_II_78.krn",
                "palestrina:mass78", "Agnus_II_78")]
    monkeypatch.setitem(styles.SOURCES, "palestrina", lambda: one)
    (piece,) = styles.load_style("palestrina", tmp_path, max_per_class=1)
    assert piece.meta["half_note_pulse"] is True and piece.meter == "4/2"
    assert piece.meta["median_duration_ql"] >= 2.0
    assert len(piece.song.tracks) >= 4
    assert piece.song.tracks[0].program == 52
    assert styles.pulse_factor(piece.song) == 2
    quarter = styles.pulse_normalised(piece.song)
    assert styles.pulse_factor(quarter) == 1
    assert str(quarter.meters[0]) == "4/4"
    assert styles.median_duration_ql(quarter) == piece.meta["median_duration_ql"] / 2
    top = styles.top_voice(piece.song)
    assert len(top.tracks) == 1 and top.tracks[0].role == "melody"


def _two_voices() -> Song:
    upper = [Note(0, 960, 72), Note(960, 1920, 74)]
    lower = [Note(0, 480, 60), Note(480, 1440, 76), Note(1440, 1920, 55)]
    return Song(tracks=[Track("low", notes=lower), Track("high", notes=upper),
                        Track("drums", is_drum=True, notes=[Note(0, 10, 100)])],
                meters=[MeterChange(0, 3, 4)])


def test_top_voice_part_and_skyline():
    song = _two_voices()
    part = styles.top_voice(song)
    assert [n.pitch for n in part.tracks[0].notes] == [72, 74]
    assert str(part.meters[0]) == "3/4"
    sky = styles.top_voice(song, mode="skyline")
    # 72 is cut where the higher 76 enters; 74 (onset under the sounding 76) is skipped and,
    # onsets only, not resumed: at 1440 the 55 is the next onset once the 76 has ended.
    assert [(n.start, n.end, n.pitch) for n in sky.tracks[0].notes] == [
        (0, 480, 72), (480, 1440, 76), (1440, 1920, 55)]
    with pytest.raises(ValueError):
        styles.top_voice(song, mode="bottom")
    assert styles.top_voice(Song()).tracks == []


def test_pulse_normalised_keeps_pickups():
    song = Song(tracks=[Track(notes=[Note(0, 960, 60), Note(960, 4800, 62)])],
                meters=[MeterChange(0, 1, 2), MeterChange(960, 4, 2)])
    out = styles.pulse_normalised(song)
    assert out.meters == [MeterChange(0, 1, 4), MeterChange(480, 4, 4)]
    assert [(n.start, n.end) for n in out.tracks[0].notes] == [(0, 480), (480, 2400)]
    assert out.pickup_ticks == 480


def test_build_command(tmp_path, capsys):
    from engine.training.data.__main__ import main

    assert main(["build", "styles", "--styles", "chinese_folk", "--max-per-class", "3",
                 "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "styles: 3 pieces" in out and "chinese_folk" in out
    assert (tmp_path / "styles-chinese_folk-3.json").exists()
