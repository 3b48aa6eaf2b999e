"""Subjects: who stands in the room (age, sex, stature, build).

The paper's point is that a single image cannot tell a 1.45 m child from a 1.80 m adult farther
away. The synthetic data must therefore cover minors (about 1.0–1.6 m) as well as adults
(about 1.50–1.95 m). :class:`SubjectSampler` draws age first, then a stature from growth
references for that age and sex, so statures are realistic for their age; the body model then
reaches the stature exactly and the stature is measured back on the mesh (``PosedBody.stature_m``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from bodies.errors import BodyInputError

SEXES = ("female", "male")
ADULT_AGE_YEARS = 18.0
MIN_AGE_YEARS, MAX_AGE_YEARS = 2.0, 90.0

# Median stature (m) by age (years), CDC 2000 growth charts (50th percentile, rounded to 1 cm),
# then adult medians. Between rows: linear interpolation.
_GROWTH_AGE_YEARS = np.array([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 90], float)
_GROWTH_MEDIAN_M = {
    "male": np.array([0.87, 0.96, 1.03, 1.10, 1.16, 1.22, 1.28, 1.34, 1.39, 1.44, 1.50, 1.56,
                      1.64, 1.70, 1.74, 1.75, 1.76, 1.77, 1.75]),
    "female": np.array([0.86, 0.95, 1.02, 1.09, 1.15, 1.21, 1.27, 1.33, 1.38, 1.44, 1.51, 1.57,
                        1.60, 1.62, 1.62, 1.63, 1.63, 1.63, 1.61]),
}
# Relative standard deviation of stature at a given age (about 4 % through childhood and adulthood).
_STATURE_RELATIVE_SD = 0.042


def median_stature_m(age_years: float, sex: str) -> float:
    """Median stature (m) of a person of this age and sex (CDC 2000 references, adult medians)."""
    _check_sex(sex)
    return float(np.interp(age_years, _GROWTH_AGE_YEARS, _GROWTH_MEDIAN_M[sex]))


def _check_sex(sex: str) -> None:
    if sex not in SEXES:
        raise BodyInputError(f"sex={sex!r} is not one of {SEXES}; pass 'female' or 'male'")


@dataclass(frozen=True)
class Subject:
    """A person's shape parameters, independent of the body model that meshes them.

    Attributes:
        age_years: age; minors are under 18.
        sex: 'female' or 'male'.
        stature_m: target standing height, sole to crown, reached exactly by the body model.
        weight, muscle, proportions: build in [0, 1], 0.5 average (Anny's phenotype scale).
    """

    age_years: float
    sex: str
    stature_m: float
    weight: float = 0.5
    muscle: float = 0.5
    proportions: float = 0.5

    def __post_init__(self) -> None:
        if not np.isfinite(self.age_years) or not (MIN_AGE_YEARS <= self.age_years <= MAX_AGE_YEARS):
            raise BodyInputError(
                f"age_years={self.age_years} is out of range; use an age between "
                f"{MIN_AGE_YEARS:g} and {MAX_AGE_YEARS:g} years"
            )
        _check_sex(self.sex)
        if not np.isfinite(self.stature_m) or not (0.7 <= self.stature_m <= 2.3):
            raise BodyInputError(
                f"stature_m={self.stature_m} is out of range; use a standing height between 0.7 and 2.3 m"
            )
        for name in ("weight", "muscle", "proportions"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise BodyInputError(f"{name}={value} must lie in [0, 1] (0.5 is average)")

    @property
    def is_minor(self) -> bool:
        return self.age_years < ADULT_AGE_YEARS

    def to_dict(self) -> dict:
        return asdict(self) | {"is_minor": self.is_minor}


@dataclass
class SubjectSamplerConfig:
    """How subjects are drawn. Defaults cover minors and adults both well.

    Attributes:
        minor_fraction: probability that a subject is a minor.
        minor_age_years: (min, max) age of minors, drawn uniformly.
        adult_age_years: (min, max) age of adults, drawn uniformly.
        minor_stature_m, adult_stature_m: statures are clipped to these ranges.
        female_fraction: probability of 'female'.
    """

    minor_fraction: float = 0.4
    minor_age_years: tuple[float, float] = (5.0, 17.0)
    adult_age_years: tuple[float, float] = (18.0, 80.0)
    minor_stature_m: tuple[float, float] = (1.0, 1.65)
    adult_stature_m: tuple[float, float] = (1.50, 1.95)
    female_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.minor_fraction <= 1.0:
            raise BodyInputError(f"minor_fraction={self.minor_fraction} must lie in [0, 1]")
        if not 0.0 <= self.female_fraction <= 1.0:
            raise BodyInputError(f"female_fraction={self.female_fraction} must lie in [0, 1]")
        lo, hi = self.minor_age_years
        if not (MIN_AGE_YEARS <= lo <= hi < ADULT_AGE_YEARS):
            raise BodyInputError(f"minor_age_years={self.minor_age_years} must lie within [{MIN_AGE_YEARS:g}, 18)")
        lo, hi = self.adult_age_years
        if not (ADULT_AGE_YEARS <= lo <= hi <= MAX_AGE_YEARS):
            raise BodyInputError(f"adult_age_years={self.adult_age_years} must lie within [18, {MAX_AGE_YEARS:g}]")


@dataclass
class SubjectSampler:
    """Draws :class:`Subject` s: age, then sex, then stature from growth references for that age.

    Same seed, same subjects: all randomness comes from the ``rng`` passed to :meth:`sample`.
    """

    config: SubjectSamplerConfig = field(default_factory=SubjectSamplerConfig)

    def sample(self, rng: np.random.Generator, age_years: float | None = None,
               sex: str | None = None) -> Subject:
        """One subject; ``age_years`` and ``sex`` may be fixed by the caller."""
        cfg = self.config
        if age_years is None:
            lo, hi = cfg.minor_age_years if rng.random() < cfg.minor_fraction else cfg.adult_age_years
            age_years = float(rng.uniform(lo, hi))
        else:
            age_years = float(age_years)
            if not (MIN_AGE_YEARS <= age_years <= MAX_AGE_YEARS):
                raise BodyInputError(
                    f"age={age_years:g} years is out of range; use an age between "
                    f"{MIN_AGE_YEARS:g} and {MAX_AGE_YEARS:g}"
                )
        if sex is None:
            sex = "female" if rng.random() < cfg.female_fraction else "male"
        _check_sex(sex)
        median = median_stature_m(age_years, sex)
        stature = median * (1.0 + _STATURE_RELATIVE_SD * float(np.clip(rng.standard_normal(), -2.5, 2.5)))
        lo, hi = cfg.minor_stature_m if age_years < ADULT_AGE_YEARS else cfg.adult_stature_m
        # A fixed age outside the default ranges (a 2-year-old) keeps its own growth-chart stature.
        if lo <= median <= hi:
            stature = float(np.clip(stature, lo, hi))
        build = np.clip(0.5 + 0.15 * rng.standard_normal(3), 0.1, 0.9)
        return Subject(
            age_years=round(age_years, 3), sex=sex, stature_m=round(stature, 4),
            weight=float(build[0]), muscle=float(build[1]), proportions=float(build[2]),
        )
