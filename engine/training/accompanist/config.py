"""Configuration of the accompanist model and its training (plain dataclasses, stored in the
checkpoint and the model card so a model can be rebuilt and described)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class ModelConfig:
    """Sizes of the VAE-RNN. Chosen so that the exported graphs stay under ~8 MB together and a
    bar costs well under 2 ms on one CPU thread (7 encoder/decoder graphs ~0.2 M weights each,
    GRUs of 128)."""

    latent: int = 32  # latent size per bar and track
    vae_hidden: int = 256  # MLP width of the bar encoder/decoder
    step_embed: int = 32  # per-step feature size inside the encoder/decoder
    rnn_hidden: int = 128  # GRU state of the melody and accompaniment RNNs
    cond_embed: int = 48  # melody features per step seen by an accompaniment decoder
    head_hidden: int = 96  # the decoder's per-step head
    n_pitches: int = 48  # pitch window per track (its low pitch is chosen from the data)
    max_bar_steps: int = 16
    steps_per_beat: int = 4
    # an accompaniment decoder also reads the whole bar's melody (the masked mean of its melody
    # features) beside the +-2 steps around each step: which chord a bar implies depends on every
    # melody note in it, not only on the neighbours of a step
    bar_context: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        d = {"bar_context": False, **d}  # checkpoints from before the option had none
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainConfig:
    """Optimisation settings of the three stages (vae, melody_rnn, acc_rnn)."""

    epochs: int = 30  # per stage (early stopping may end a stage sooner)
    vae_epochs: int | None = None  # None: `epochs`
    rnn_epochs: int | None = None  # None: `epochs`
    batch_bars: int = 64  # bars per VAE batch
    batch_seqs: int = 16  # pieces per RNN batch
    lr: float = 2e-3
    patience: int = 6  # early stopping on the validation loss
    beta: float = 0.25  # KL weight after warm-up
    kl_warmup: float = 0.3  # share of VAE epochs over which beta ramps up from 0
    free_bits: float = 0.15  # nats per latent dim below which KL is not penalised (keeps latents used)
    transpose: int = 2  # augmentation: shift key-normalised pieces by -t..+t semitones
    decoder_loss: float = 1.0  # RNN stages: weight of the decoder's BCE at the predicted latent
    latent_loss: float = 0.05  # RNN stages: weight of the MSE to the encoder mean (an anchor)
    decoder_lr: float = 5e-4  # acc stage: learning rate of the decoders being fine-tuned
    latent_noise: float = 0.1  # RNN stages: noise on teacher-forced input latents (x latent std)
    predicted_melody: float = 0.3  # acc stage: share of bars whose melody latent is the melody
    # RNN's prediction, as in live play where the bar is not yet played
    finetune_decoders: bool = True  # acc stage: train the role decoders at predicted latents
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrackInfo:
    """One track of the model: its name, role, pitch window and GM program."""

    name: str
    low_pitch: int
    program: int = 0
    is_drum: bool = False
    velocity: int = 80
    max_voices: int = 1
    extra: dict = field(default_factory=dict)
