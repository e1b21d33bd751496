"""Theorem 3.5's thresholds per model: ``faceattr calibrate`` (:mod:`.calibrate`), the rule
(:mod:`.rule`), the calibration split (:mod:`.split`), the protocol's ``[calibration]`` table
(:mod:`.spec`) and the rewrite of its pre-registration block (:mod:`.block`)."""
