"""The emotion task's options and its search's, importable without TensorFlow so ``fit emotion --help``
answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.shipped import find_model
from trainer.validation import check_fields, model_file_error

TUNERS = ("hyperband", "bayesian", "random")


@dataclass(frozen=True)
class TunerConfig:
    """The search's settings, made from a checked EmotionConfig (``tuner_config``), whose fields hold the ranges."""

    # Random search with fewer, longer trials: Hyperband's one-epoch first round ranked noise here
    # (every trial near the majority-class rate), a full short schedule per trial does not.
    tuner: str = "random"
    # Bayesian and random search: trials at most (the budget usually ends the search first).
    # Hyperband sizes itself from epochs and factor.
    max_trials: int = 12
    # Epochs per trial (Hyperband: the most any trial gets), each a full cosine schedule.
    epochs: int = 5
    # Hyperband keeps the best 1/factor of each round.
    factor: int = 3
    seed: int = 42
    objective: str = "val_accuracy"
    # Wall-clock minutes for the whole search, across --resume; None: no budget.
    minutes: float | None = None
    # Extra seeds of the default configuration, to tell a real difference between trials from noise.
    seed_repeats: int = 2


@dataclass(frozen=True)
class EmotionConfig:
    # 128 with SGD at lr 0.05: the recipe of the VGG nets that pass 72% PrivateTest on FER2013.
    batch_size: int = field(default=128, metadata={"help": "Batch size.", "min": 1})
    tune: bool = field(default=False, metadata={
        "help": "Search with KerasTuner first (--tune-minutes), then train the pick for --max-epochs, test and "
                "export: 2.3 h measured on 2 cores with --precision bf16-mixed (about twice that in float32), an "
                "estimated 35 min with --max-epochs 5."})
    # Random search with fewer, longer trials: Hyperband's one-epoch rounds ranked noise (every
    # trial near the majority-class rate); a whole short cosine schedule per trial ranks.
    tuner: str = field(default="random", metadata={"help": "Search algorithm.", "choices": TUNERS})
    # Random and Bayesian search: trials at most; the --tune-minutes budget usually ends it first.
    max_trials: int = field(default=12, metadata={"help": "Trials for bayesian/random search, at most.", "min": 1})
    # Each trial is a full cosine schedule on the --tune-faces subset.
    tune_epochs: int = field(default=5, metadata={"help": "Epochs per trial (Hyperband: the most).", "min": 1})
    # About ten trials and the two seed runs in bf16 on 2 cores; kept in <run>/search/budget.json, so it
    # holds across --resume.
    tune_minutes: float = field(
        default=20.0, metadata={"help": "Wall-clock minutes for the whole search, across --resume.", "above": 0})
    # A fixed class-stratified fifth of Training: a trial costs about one full-data epoch and every
    # trial sees the same faces. --limit-train-batches also applies.
    tune_faces: int = field(default=6000, metadata={
        "help": "Training faces per trial (fixed stratified subset).", "min": 7})  # one face a class
    # The noise floor a difference between trials must beat.
    tune_seeds: int = field(
        default=2, metadata={"help": "Extra seeds of the default network trained to measure the seed spread.",
                             "min": 0})
    # `test --model`: an exported .h5 (its JSON card beside it) to evaluate instead of a new network.
    model: str | None = field(
        default=None, metadata={"help": "An exported model (.h5) to evaluate, e.g. models/emotion.h5.",
                                "check": model_file_error})
    # Off: count**-0.5 weights traded accuracy for macro recall (disgust precision 0.53 at recall 0.73).
    class_weight_power: float = field(default=0.0, metadata={
        "help": "Class weights count**-power (0.5 lifts rare classes for macro recall); 0 turns them off.",
        "min": 0})
    # The recipe's choices below are the search's default point; --tune searches around them.
    # A random 44x44 crop of each 48x48 face (its own offset) in training, the centre crop at inference.
    crop_size: int = field(default=44, metadata={
        "help": "Random crop of each 48x48 face in training, centre crop at inference; 48 turns crops off.",
        "min": 8, "max": 48})
    # SGD with Nesterov momentum 0.9, as the public FER2013 VGG recipes.
    learning_rate: float = field(default=0.05, metadata={
        "help": "Peak SGD learning rate (after the warm-up).", "above": 0})
    # Keras's decoupled decay is multiplied by the learning rate: 5e-3 x 0.05 shrinks every weight by
    # 2.5e-4 a step at the peak (about 5% an epoch of 225 steps), which is real regularisation.
    weight_decay: float = field(default=5e-3, metadata={
        "help": "Decoupled weight decay; each step shrinks weights by learning rate x this.", "min": 0})
    label_smoothing: float = field(default=0.1, metadata={
        "help": "Label smoothing of the cross-entropy.", "min": 0, "below": 1})
    # One mild warp at most: three stacked warps blurred the training faces the test faces are not.
    rotation_degrees: float = field(default=0.0, metadata={
        "help": "Random rotation up to +-this many degrees in training; 0 turns it off.", "min": 0, "max": 180})
    # Live's detector frames a face at 0.77-1.37x the FER face side (5th-95th percentile): a random zoom
    # of each face over about that range, and a shift, teach the network the framings it meets there.
    # Each is applied to half the faces, as the published 73.3% recipe (usef-kh/fer) applies its crops.
    framing_zoom: float = field(default=0.25, metadata={
        "help": "Random zoom of half the training faces: the face side varies by up to +-this fraction; 0 off.",
        "min": 0, "below": 1})
    framing_shift: float = field(default=0.1, metadata={
        "help": "Random shift of half the training faces, up to +-this fraction of the side; 0 off.",
        "min": 0, "below": 1})
    # Warm-up then one cosine to final_lr_fraction over the whole --max-epochs, so resuming continues it.
    warmup_epochs: float = field(default=2.0, metadata={
        "help": "Linear warm-up epochs (at most a quarter of --max-epochs), then one cosine.", "min": 0})
    # 0: the cosine anneals to zero over --max-epochs; an early stop would cut it before it anneals.
    stop_patience: int = field(default=0, metadata={
        "help": "Stop after this many epochs without a better PublicTest accuracy; 0 never stops early.",
        "min": 0})
    final_lr_fraction: float = field(
        default=0.0, metadata={"help": "Cosine decay ends at this fraction of the learning rate.", "min": 0, "max": 1})
    # Where the shipped model goes; it is replaced only by a model with better PublicTest accuracy.
    export_dir: str | None = field(
        default="models", metadata={"help": "Folder of the exported model, replaced only by a better one.",
                                    "any": "any folder; it is made when missing"})

    def __post_init__(self) -> None:
        check_fields(self)
        if self.model is not None:  # models/... is also found from another folder, in the installed project
            object.__setattr__(self, "model", str(find_model(self.model)))

    def tuner_config(self, seed: int = 42) -> TunerConfig:
        return TunerConfig(self.tuner, self.max_trials, self.tune_epochs, seed=seed, minutes=self.tune_minutes,
                           seed_repeats=self.tune_seeds)
