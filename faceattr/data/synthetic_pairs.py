"""Pair source over the known-answer synthetic world (held-out identities)."""

from __future__ import annotations

from dataclasses import dataclass

from faceattr.data.pairs import LoadedImage, Pair, content_pair_id
from faceattr.data.synthetic import Nuisance, check_difficulty, synthetic_face
from faceattr.rng import numpy_generator

__all__ = ["SyntheticPairSource"]


def _image_id(identity: int, view: int) -> str:
    return f"id{identity:05d}/view{view}"


def _parse_image_id(image_id: str) -> tuple[int, int]:
    try:
        identity_part, view_part = image_id.split("/")
        return int(identity_part.removeprefix("id")), int(view_part.removeprefix("view"))
    except ValueError:
        raise ValueError(f"not a synthetic image id: {image_id!r} (expected 'id01000/view0')") \
            from None


@dataclass(frozen=True)
class SyntheticPairSource:
    """Genuine and impostor pairs of held-out synthetic identities.

    Parameters
    ----------
    world_seed : int
        Seed of the synthetic world (identities and views are keyed by it).
    n_pairs : int
        Number of pairs.
    genuine_fraction : float
        Share of genuine pairs, a fraction; ``round(n_pairs * genuine_fraction)`` are genuine.
    first_identity : int
        First identity id used; keep it above the training identities (held-out pairs).
    sampling_seed : int
        Seed of the pair sampler (stream ``(sampling_seed, "pairs", ...)``).
    difficulty : int
        Difficulty level of the rendered world (:data:`faceattr.data.synthetic.DIFFICULTY_LEVELS`;
        0: the original world). The same identities and views are paired at every level; the
        pair ids name the level only when it is above 0 (level-0 ids are unchanged).
    """

    world_seed: int
    n_pairs: int
    genuine_fraction: float
    first_identity: int
    sampling_seed: int
    name: str = "synthetic"
    difficulty: int = 0

    def __post_init__(self) -> None:
        check_difficulty(self.difficulty)

    def pairs(self) -> list[Pair]:
        """Return the pairs: genuine ones first, then impostors, each with a content id."""
        rng = numpy_generator(self.sampling_seed, "pairs", self.world_seed, self.first_identity)
        n_genuine = round(self.n_pairs * self.genuine_fraction)
        pool = self.first_identity + rng.permutation(4 * self.n_pairs)
        pairs: list[Pair] = []
        for i in range(self.n_pairs):
            if i < n_genuine:
                ident_a = ident_b = int(pool[i])
                view_b = 1
            else:
                ident_a, ident_b = int(pool[2 * i]), int(pool[2 * i + 1])
                view_b = 0
            image_a, image_b = _image_id(ident_a, 0), _image_id(ident_b, view_b)
            world = f"w{self.world_seed}" + (f"d{self.difficulty}" if self.difficulty else "")
            pairs.append(Pair(pair_id=content_pair_id(self.name, f"{world}:{image_a}",
                                                      f"{world}:{image_b}"),
                              image_a=image_a, image_b=image_b, identity_a=str(ident_a),
                              identity_b=str(ident_b), is_genuine=ident_a == ident_b))
        return pairs

    def load_image(self, image_id: str) -> LoadedImage:
        """Render an image and its ground-truth identity mask."""
        identity, view = _parse_image_id(image_id)
        face = synthetic_face(self.world_seed, identity, view, self.difficulty)
        return LoadedImage(image=face.image, identity_mask=face.identity_mask)

    def nuisance(self, image_id: str) -> Nuisance:
        """The generator's exact nuisance values of an image (for stratified analyses)."""
        identity, view = _parse_image_id(image_id)
        face = synthetic_face(self.world_seed, identity, view, self.difficulty)
        assert face.nuisance is not None  # render_face always records it
        return face.nuisance
