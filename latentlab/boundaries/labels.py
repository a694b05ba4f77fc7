"""When an attribute's labels are nearly all one class, its separability or boundary means little.

The classifier's label of a sample is its score's sign (positive = attribute present, the rule
every latentlab classifier keeps). If the minority class holds fewer than `MINORITY_WARN` (5 %) of
the samples a metric uses, the score is dominated by that imbalance: linear separability's
H(Y|X) is near 0 for any codes (a constant guess is right almost always), and an InterFaceGAN
boundary between the top and bottom samples separates degrees of one class. The library then
issues an `ImbalancedLabelsWarning` (and records the message in the result); the command line
prints it as one line on stderr and goes on.
"""

import numpy as np

__all__ = ["ImbalancedLabelsWarning", "MINORITY_WARN", "imbalance_message"]

MINORITY_WARN = 0.05


class ImbalancedLabelsWarning(UserWarning):
    """An attribute's labels are nearly all one class among the samples a metric uses."""


def imbalance_message(present, name, used, consequence, threshold=MINORITY_WARN):
    """None when the classes are balanced enough, else one line: which class is rare, how rare, what it means.

    present: boolean labels [n] (score > 0) of the samples used; name: the attribute; used: how the
    samples were chosen (e.g. 'the 5000 kept samples'); consequence: why the score then means little.
    """
    present = np.asarray(present, dtype=bool)
    if present.size == 0:
        return None
    frac = float(present.mean())
    minority = min(frac, 1.0 - frac)
    if minority >= threshold:
        return None
    rare = "present" if frac < 0.5 else "absent"
    return f"{name}: the attribute is {rare} in only {minority:.1%} of {used} (score > 0 = present): {consequence}"
