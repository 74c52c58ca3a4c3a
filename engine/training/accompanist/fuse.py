"""Fuse an exported accompanist's per-role graphs into one `roles_step` graph.

Why: one accompanied bar used to cost ten ONNX Runtime calls (per role: RNN step, decoder,
re-encoder; plus the melody). Each call releases and re-takes the GIL, and with another Python
thread busy (the studio's GUI) re-taking it waits up to the 5 ms switch interval: `bench live`
measured 23-25 ms per bar under that load against 1.3 ms idle. One call for every role's
RNN -> decoder -> decision -> re-encoder keeps the per-bar cost close to the idle figure.

The graph is composed from the already exported (and parity-checked) component graphs with the
`onnx` package, so it needs no torch checkpoint and can upgrade a shipped model:

    python -m engine.training.accompanist.fuse assets/models/accompanist-bach.json

Inputs (R = roles, each role's names prefixed by `ROLE.`):
    z_mel (1,L), mask (1,S), melody (1,2,S,Pm)                       shared by every role
    ROLE.z_prev (1,L), ROLE.h (1,1,H), ROLE.prev_last (1,P)        the role's state
    ROLE.noise (1,L)      added to the predicted latent (temperature; zeros for T = 0)
    ROLE.thresholds (2,)  [onset, active] probability thresholds (from the card)
    ROLE.max_voices (1,)  int64: the likeliest `max_voices` pitches of a step may sound
Outputs: ROLE.planes (1,2,S,P) float 0/1, ROLE.h_out, ROLE.played (the re-encoded bar's mean).
The decision is `engine.models.accompanist.decode_planes` written in ONNX ops (tested equal).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, compose, helper

from engine.models.card import ModelCard, sha256_file

COMPONENT = "roles_step"


def _graph(card: ModelCard, component: str, prefix: str) -> onnx.GraphProto:
    model = onnx.load(str(card.component_path(component)))
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


def _split(src: str, outs: list[str], opset: int) -> onnx.NodeProto:
    if opset >= 18:  # Split took `num_outputs` from opset 18 on
        return helper.make_node("Split", [src], outs, axis=0, num_outputs=len(outs))
    return helper.make_node("Split", [src], outs, axis=0)


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


def fuse_roles(card: ModelCard) -> onnx.ModelProto:
    """The `roles_step` model of `card` (not written)."""
    roles = list(card.representation["roles"])
    nodes, inits, inputs, outputs = [], [], {}, []
    opset = None

    def link(src: str, dst: str) -> None:
        nodes.append(helper.make_node("Identity", [src], [dst]))

    def const(name: str, value: list[int], dtype=TensorProto.INT64) -> None:
        inits.append(helper.make_tensor(name, dtype, [len(value)], value))

    const("axis_last", [-1])
    const("axis_plane", [1])
    for role in roles:
        p = f"{role}."
        rnn = _graph(card, f"rnn_{role}", p + "rnn.")
        dec = _graph(card, f"dec_{role}", p + "dec.")
        enc = _graph(card, f"enc_{role}", p + "enc.")
        if opset is None:
            opset = onnx.load(str(card.component_path(f"rnn_{role}"))).opset_import
        for g in (rnn, dec, enc):
            nodes.extend(g.node)
            inits.extend(g.initializer)
        dec_inputs = {v.name for v in dec.input}
        for name, g, sub in (("z_mel", rnn, "rnn."), ("mask", rnn, "rnn."),
                             ("melody", dec, "dec.")):  # shared inputs, typed by their graph
            inputs.setdefault(name, _renamed(_value_info(g, p + sub + name), name))
        # role state in
        inputs[p + "z_prev"] = _renamed(_value_info(rnn, p + "rnn.z_prev"), p + "z_prev")
        inputs[p + "h"] = _renamed(_value_info(rnn, p + "rnn.h"), p + "h")
        inputs[p + "noise"] = _renamed(_value_info(rnn, p + "rnn.z_prev"), p + "noise")
        inputs[p + "thresholds"] = helper.make_tensor_value_info(p + "thresholds",
                                                                 TensorProto.FLOAT, [2])
        inputs[p + "max_voices"] = helper.make_tensor_value_info(p + "max_voices",
                                                                 TensorProto.INT64, [1])
        for name in ("z_mel", "mask"):
            link(name, p + "rnn." + name)
        link(p + "z_prev", p + "rnn.z_prev")
        link(p + "h", p + "rnn.h")
        # predicted latent (+ noise) -> decoder
        nodes.append(helper.make_node("Add", [p + "rnn.z", p + "noise"], [p + "dec.z"]))
        link("mask", p + "dec.mask")
        link("melody", p + "dec.melody")
        if p + "dec.prev_last" in dec_inputs:
            inputs[p + "prev_last"] = _renamed(_value_info(dec, p + "dec.prev_last"),
                                               p + "prev_last")
            link(p + "prev_last", p + "dec.prev_last")
        # decision: decode_planes in ONNX ops
        t = p + "d."
        nodes += [
            helper.make_node("Sigmoid", [p + "dec.active_logits"], [t + "p_ac"]),
            helper.make_node("Sigmoid", [p + "dec.onset_logits"], [t + "p_on"]),
            _split(p + "thresholds", [t + "thr_on", t + "thr_ac"], opset[0].version),
            helper.make_node("TopK", [t + "p_ac", p + "max_voices"], [t + "top", t + "top_i"],
                             axis=-1),
            helper.make_node("ReduceMin", [t + "top"], [t + "kth"], axes=[-1], keepdims=1),
            helper.make_node("Greater", [t + "p_ac", t + "thr_ac"], [t + "ac_thr"]),
            helper.make_node("GreaterOrEqual", [t + "p_ac", t + "kth"], [t + "ac_top"]),
            helper.make_node("And", [t + "ac_thr", t + "ac_top"], [t + "ac_raw"]),
            helper.make_node("Unsqueeze", ["mask", "axis_last"], [t + "mask3"]),
            helper.make_node("Cast", [t + "mask3"], [t + "mask3b"], to=TensorProto.BOOL),
            helper.make_node("And", [t + "ac_raw", t + "mask3b"], [t + "active"]),
            helper.make_node("Greater", [t + "p_on", t + "thr_on"], [t + "on_thr"]),
            helper.make_node("And", [t + "on_thr", t + "active"], [t + "onset"]),
            helper.make_node("Unsqueeze", [t + "onset", "axis_plane"], [t + "on4"]),
            helper.make_node("Unsqueeze", [t + "active", "axis_plane"], [t + "ac4"]),
            helper.make_node("Concat", [t + "on4", t + "ac4"], [t + "planes_b"], axis=1),
            helper.make_node("Cast", [t + "planes_b"], [p + "planes"], to=TensorProto.FLOAT),
        ]
        # what was decided -> re-encoded: the role's next previous latent
        link(p + "planes", p + "enc.planes")
        link("mask", p + "enc.mask")
        link("melody", p + "enc.melody")
        dec_out = _value_info(dec, p + "dec.active_logits")
        planes_info = helper.make_tensor_value_info(
            p + "planes", TensorProto.FLOAT,
            [d.dim_param or d.dim_value for d in dec_out.type.tensor_type.shape.dim[:1]]
            + [2] + [d.dim_param or d.dim_value for d in dec_out.type.tensor_type.shape.dim[1:]])
        outputs += [planes_info,
                    _renamed(_value_info(rnn, p + "rnn.h_out"), p + "h_out"),
                    _renamed(_value_info(enc, p + "enc.mu"), p + "played")]
        nodes.append(helper.make_node("Identity", [p + "rnn.h_out"], [p + "h_out"]))
        nodes.append(helper.make_node("Identity", [p + "enc.mu"], [p + "played"]))
    nodes = _topological(nodes, set(inputs) | {i.name for i in inits})
    graph = helper.make_graph(nodes, f"{card.name}.{COMPONENT}", list(inputs.values()),
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=list(opset),
                              producer_name="popmusicnet-fuse")
    model.ir_version = onnx.load(str(card.component_path(f"rnn_{roles[0]}"))).ir_version
    onnx.checker.check_model(model)
    return model


def add_roles_step(card_path: str | Path) -> Path:
    """Write NAME.roles_step.onnx beside the card and list it in the card (atomically)."""
    from engine.fileio import atomic_path

    card_path = Path(card_path)
    card = ModelCard.read(card_path)
    card.verify()
    model = fuse_roles(card)
    dest = card_path.parent / f"{card.name}.{COMPONENT}.onnx"
    with atomic_path(dest) as tmp:
        onnx.save(model, str(tmp))
    card.files[COMPONENT] = dest.name
    card.sha256[COMPONENT] = sha256_file(dest)
    card.training["fused"] = ("roles_step composed from the rnn/dec/enc role graphs by "
                              "`python -m engine.training.accompanist.fuse CARD`")
    card.write(card_path)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.training.accompanist.fuse",
                                 description="add the fused roles_step graph to an accompanist")
    ap.add_argument("card", help="the model card (NAME.json)")
    args = ap.parse_args(argv)
    print(add_roles_step(args.card))
    return 0


if __name__ == "__main__":
    sys.exit(main())
