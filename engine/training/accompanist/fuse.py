"""Fuse an exported accompanist's per-role graphs into three graphs for all roles at once.

Why: one accompanied bar cost eleven ONNX Runtime calls (per role: RNN step, decoder,
re-encoder; plus the melody). Each call releases and re-takes the GIL, and with another Python
thread busy (the studio's GUI) re-taking it can wait for the switch interval; each also pays
ONNX Runtime's fixed cost. Now a bar whose melody is known (offline, `accompany`) is two calls:
`roles_decode` (melody encoder + every role's RNN step and decoder), the line decision in
numpy/numba (`engine.models.line_decoding.decode_lines`, a Viterbi pass ONNX cannot express
simply), `roles_encode` (every re-encoder + the melody RNN step on the bar, so observing it
costs no call). Live, where the melody is predicted, a bar is three: `roles_decode` (with the
melody decoder: the predicted bar the decoders hear), `roles_encode`, and once the bar has been
played `roles_rnn` (melody encoder + melody RNN + every role's RNN step replayed on it).

The graphs are composed from the already exported (and parity-checked) component graphs with
the `onnx` package, so they need no torch checkpoint and can upgrade a shipped model:

    python -m engine.training.accompanist.fuse assets/models/accompanist-bach.json

Shared inputs: mask (1,S), melody (1,2,S,Pm) (planes), z_mel (1,L) and known (1,1) bool:
known = the melody latent is the melody encoder's on `melody` (computed in the graph), else the
given z_mel (predicted); output z_mel_out, the one used. roles_decode also outputs melody_out,
the bar its decoders heard: `melody` when known, else the melody decoder's probabilities for
z_mel (what roles_encode is then given as `melody`).
roles_decode, inputs (each role's names prefixed by `ROLE.`):
    z_mel, known, mask, melody
    ROLE.z_prev (1,L), ROLE.h (1,1,H), ROLE.prev_last (1,P)      the role's state
    ROLE.noise (1,L)    added to the predicted latent (temperature; zeros for T = 0)
  outputs: ROLE.onset_logits, ROLE.active_logits (1,S,P), ROLE.h_out, z_mel_out, melody_out
roles_encode, inputs: mask, melody, ROLE.planes (1,2,S,P), z_mel, melody.h (1,1,H); outputs:
  ROLE.played (1,L), the mean latent of what the role played (its next previous latent), and
  melody.z_next, melody.h_out: the melody RNN stepped on z_mel
roles_rnn, inputs: z_mel, known, mask, melody, melody.h, ROLE.z_prev, ROLE.h; outputs:
  ROLE.h_out (every role's RNN step alone: a live bar replayed on the melody actually played),
  z_mel_out, melody.z_next, melody.h_out

`--slim` then drops the per-role graphs (enc_/dec_/rnn_ROLE) from the card and the disk: the
runtime and `eval accompanist` need only the melody graphs and the three fused ones. The bundled
model ships slim; a freshly trained model keeps everything (the parity tests
compare the fused graphs with the per-role ones).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
from onnx import compose, helper

from engine.models.accompanist_graphs import (ACTIVE_LOGITS, DEC, DECODE, ENC, ENCODE, FUSED,
                                               H, H_OUT, KNOWN, MASK, MASK_PREV, MELODY,
                                               MELODY_OUT, MELODY_RNN, MELODY_STATE, MU, NOISE,
                                               ONSET_LOGITS, PLANES, PLAYED, PREV_LAST, RNN,
                                               ROLE_RNN, Z, Z_MEL, Z_MEL_OUT, Z_NEXT, Z_PREV,
                                               component, prefix)
from engine.models.card import ModelCard, sha256_file

# the graphs' input and output names are engine.models.accompanist_graphs'; the inner names
# below (a component graph's, prefixed apart) are this module's own
OLD = ("roles_step",)  # the first layout: the decision inside the graph


def _graph(card: ModelCard, name: str, prefix: str) -> onnx.GraphProto:
    model = onnx.load(str(card.component_path(name)))
    return compose.add_prefix(model, prefix).graph


def _value_info(graph: onnx.GraphProto, name: str) -> onnx.ValueInfoProto:
    for v in list(graph.input) + list(graph.output):
        if v.name == name:
            return v
    raise KeyError(name)


def _renamed(info: onnx.ValueInfoProto, name: str) -> onnx.ValueInfoProto:
    out = onnx.ValueInfoProto()
    out.CopyFrom(info)
    out.name = name
    return out


def _topological(nodes: list[onnx.NodeProto], known: set[str]) -> list[onnx.NodeProto]:
    """Nodes in an order ONNX accepts (each after the producers of its inputs)."""
    done, out, todo = set(known), [], list(nodes)
    while todo:
        rest = [n for n in todo if not all(i in done or not i for i in n.input)]
        ready = [n for n in todo if all(i in done or not i for i in n.input)]
        if not ready:
            raise ValueError(f"fuse: cannot order {rest[0].name or rest[0].op_type}")
        for n in ready:
            out.append(n)
            done.update(n.output)
        todo = rest
    return out


def fuse_roles(card: ModelCard) -> dict[str, onnx.ModelProto]:
    """The `roles_decode` and `roles_encode` models of `card` (not written)."""
    roles = list(card.representation["roles"])
    first = onnx.load(str(card.component_path(component(ROLE_RNN, roles[0]))))
    parts = {DECODE: ([], [], {}, []), ENCODE: ([], [], {}, []), RNN: ([], [], {}, [])}

    def link(nodes, src: str, dst: str) -> None:
        nodes.append(helper.make_node("Identity", [src], [dst]))

    def embed(part, g, p: str, sub: str, shared=(), own=(), outs=()) -> None:
        """Add graph `g` (names prefixed `sub`) to `part`: inputs `shared` by every role,
        the role's `own` inputs (prefixed `p`), and its outputs (src, dst) renamed to p+dst."""
        nodes, inits, inputs, outputs = part
        nodes.extend(g.node)
        inits.extend(g.initializer)
        for name in shared:
            inputs.setdefault(name, _renamed(_value_info(g, sub + name), name))
            link(nodes, name, sub + name)
        for name in own:
            inputs[p + name] = _renamed(_value_info(g, sub + name), p + name)
            link(nodes, p + name, sub + name)
        for src, dst in outs:
            link(nodes, sub + src, p + dst)
            outputs.append(_renamed(_value_info(g, sub + src), p + dst))

    for role in roles:
        p = prefix(role)
        rnn = _graph(card, component(ROLE_RNN, role), p + "rnn.")
        dec = _graph(card, component(DEC, role), p + "dec.")
        enc = _graph(card, component(ENC, role), p + "enc.")
        # decode: RNN step -> (+ noise) -> decoder logits
        nodes, inits, inputs, outputs = parts[DECODE]
        for g in (rnn, dec):
            nodes.extend(g.node)
            inits.extend(g.initializer)
        for name, g, sub in ((Z_MEL, rnn, "rnn."), (MASK, rnn, "rnn."),
                             (MELODY, dec, "dec.")):  # shared, typed by their graph
            inputs.setdefault(name, _renamed(_value_info(g, p + sub + name), name))
        inputs[p + Z_PREV] = _renamed(_value_info(rnn, p + "rnn." + Z_PREV), p + Z_PREV)
        inputs[p + H] = _renamed(_value_info(rnn, p + "rnn." + H), p + H)
        inputs[p + NOISE] = _renamed(_value_info(rnn, p + "rnn." + Z_PREV), p + NOISE)
        link(nodes, "z_mel_used", p + "rnn." + Z_MEL)
        link(nodes, MASK, p + "rnn." + MASK)
        for name in (Z_PREV, H):
            link(nodes, p + name, p + "rnn." + name)
        nodes.append(helper.make_node("Add", [p + "rnn." + Z, p + NOISE], [p + "dec." + Z]))
        link(nodes, MASK, p + "dec." + MASK)
        link(nodes, "melody_used", p + "dec." + MELODY)
        if any(v.name == p + "dec." + PREV_LAST for v in dec.input):
            inputs[p + PREV_LAST] = _renamed(_value_info(dec, p + "dec." + PREV_LAST),
                                             p + PREV_LAST)
            link(nodes, p + PREV_LAST, p + "dec." + PREV_LAST)
        for src, dst, g in ((p + "dec." + ONSET_LOGITS, p + ONSET_LOGITS, dec),
                            (p + "dec." + ACTIVE_LOGITS, p + ACTIVE_LOGITS, dec),
                            (p + "rnn." + H_OUT, p + H_OUT, rnn)):
            link(nodes, src, dst)
            outputs.append(_renamed(_value_info(g, src), dst))
        # rnn: the RNN step alone (a second copy of its graph, prefixed apart)
        embed(parts[RNN], _graph(card, component(ROLE_RNN, role), p + "replay."), p,
              p + "replay.", shared=(MASK,), own=(Z_PREV, H), outs=((H_OUT, H_OUT),))
        link(parts[RNN][0], "z_mel_used", p + "replay." + Z_MEL)
        # encode: the decided planes -> the role's next previous latent
        embed(parts[ENCODE], enc, p, p + "enc.", shared=(MASK, MELODY), own=(PLANES,),
              outs=((MU, PLAYED),))
    # the melody's own graphs, once: its encoder in front of the roles (a known bar), its RNN
    # step beside the re-encoders (the bar is then observed with no call of its own)
    melody = card.representation["tracks"][0]["name"]
    mel = prefix(MELODY_STATE)
    mel_enc = _graph(card, component(ENC, melody), mel + "enc.")
    mel_rnn = _graph(card, MELODY_RNN, mel + "rnn.")
    z_info = _value_info(mel_rnn, mel + "rnn." + Z_PREV)

    def melody_encoder(part) -> None:
        """z_mel_used = known ? the melody encoder on `melody` : the given `z_mel`."""
        nodes, inits, inputs, outputs = part
        embed(part, mel_enc, "", mel + "enc.", shared=(MASK,))
        link(nodes, MELODY, mel + "enc." + PLANES)
        inputs.setdefault(MELODY, _renamed(_value_info(mel_enc, mel + "enc." + PLANES), MELODY))
        inputs[Z_MEL] = _renamed(z_info, Z_MEL)
        inputs[KNOWN] = helper.make_tensor_value_info(KNOWN, onnx.TensorProto.BOOL,
                                                      ["batch", 1])
        nodes.append(helper.make_node("Where", [KNOWN, mel + "enc." + MU, Z_MEL],
                                      ["z_mel_used"]))
        link(nodes, "z_mel_used", Z_MEL_OUT)
        outputs.append(_renamed(z_info, Z_MEL_OUT))

    def melody_step(part, z: str) -> None:
        """The melody RNN stepped on latent `z` (the bar's mask, state `melody.h`)."""
        nodes = part[0]
        embed(part, mel_rnn, mel, mel + "rnn.", own=(H,),
              outs=((Z_NEXT, Z_NEXT), (H_OUT, H_OUT)))
        link(nodes, z, mel + "rnn." + Z_PREV)
        link(nodes, MASK, mel + "rnn." + MASK_PREV)

    melody_encoder(parts[DECODE])
    # the bar the decoders hear: the melody given (known), else the melody decoder's
    # probabilities for the predicted latent, as (1,2,S,Pm) like the planes
    nodes, inits, inputs, outputs = part = parts[DECODE]
    mel_dec = _graph(card, component(DEC, melody), mel + "dec.")
    embed(part, mel_dec, "", mel + "dec.", shared=(MASK,))
    link(nodes, Z_MEL, mel + "dec." + Z)
    planes = _value_info(mel_enc, mel + "enc." + PLANES)
    dims = [d.dim_value for d in planes.type.tensor_type.shape.dim[1:]]
    inits.append(onnx.numpy_helper.from_array(np.array([-1, *dims], np.int64), "melody.shape"))
    inits.append(onnx.numpy_helper.from_array(np.array([-1, 1, 1, 1], np.int64),
                                              "melody.known_shape"))
    nodes.extend([
        helper.make_node("Concat", [mel + "dec." + ONSET_LOGITS, mel + "dec." + ACTIVE_LOGITS],
                         ["melody.logits"], axis=1),
        helper.make_node("Reshape", ["melody.logits", "melody.shape"], ["melody.planes"]),
        helper.make_node("Sigmoid", ["melody.planes"], ["melody.predicted"]),
        helper.make_node("Reshape", [KNOWN, "melody.known_shape"], ["melody.known"]),
        helper.make_node("Where", ["melody.known", MELODY, "melody.predicted"],
                         ["melody_used"]),
    ])
    link(nodes, "melody_used", MELODY_OUT)
    outputs.append(_renamed(planes, MELODY_OUT))
    part = parts[ENCODE]
    part[2][Z_MEL] = _renamed(z_info, Z_MEL)
    melody_step(part, Z_MEL)
    melody_encoder(parts[RNN])
    melody_step(parts[RNN], "z_mel_used")
    models = {}
    for fused, (nodes, inits, inputs, outputs) in parts.items():
        nodes = _topological(nodes, set(inputs) | {i.name for i in inits})
        graph = helper.make_graph(nodes, f"{card.name}.{fused}", list(inputs.values()),
                                  outputs, inits)
        model = helper.make_model(graph, opset_imports=list(first.opset_import),
                                  producer_name="popmusicnet-fuse")
        model.ir_version = first.ir_version
        onnx.checker.check_model(model)
        models[fused] = model
    return models


def add_fused(card_path: str | Path, *, slim: bool = False) -> list[Path]:
    """Write the fused graphs beside the card and list them in it (atomically); drop a fused
    graph of an older layout; `slim`: then drop the per-role graphs too (see the module
    docstring). A slim card stays as it is (its per-role graphs are gone: nothing to fuse)."""
    from engine.fileio import atomic_path

    card_path = Path(card_path)
    card = ModelCard.read(card_path)
    card.verify()
    written = []
    roles = list(card.representation["roles"])
    per_role = [component(kind, r) for r in roles for kind in (ENC, DEC, ROLE_RNN)]
    if not all(c in card.files for c in per_role):
        if all(c in card.files for c in FUSED):
            return written  # already slim
        raise ValueError(f"{card_path}: per-role graphs missing, cannot fuse")
    for fused, model in fuse_roles(card).items():
        dest = card_path.parent / f"{card.name}.{fused}.onnx"
        with atomic_path(dest) as tmp:
            onnx.save(model, str(tmp))
        card.files[fused] = dest.name
        card.sha256[fused] = sha256_file(dest)
        written.append(dest)
    for old in OLD:
        if old in card.files:
            (card_path.parent / card.files.pop(old)).unlink(missing_ok=True)
            card.sha256.pop(old, None)
    card.training["fused"] = (f"{', '.join(FUSED)} composed from the rnn/dec/enc role graphs "
                              "by `python -m engine.training.accompanist.fuse CARD`")
    if slim:
        for graph in per_role:
            (card_path.parent / card.files.pop(graph)).unlink(missing_ok=True)
            card.sha256.pop(graph, None)
        card.training["fused"] += (" --slim (the per-role graphs dropped: the runtime and the "
                                   "evaluation run the fused ones)")
    card.write(card_path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.training.accompanist.fuse",
                                 description="add the fused role graphs to an accompanist")
    ap.add_argument("card", help="the model card (NAME.json)")
    ap.add_argument("--slim", action="store_true",
                    help="then drop the per-role graphs (the runtime needs only the fused ones)")
    args = ap.parse_args(argv)
    for path in add_fused(args.card, slim=args.slim):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
