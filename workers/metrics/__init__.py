"""Caption and detection metrics in the paper's taxonomy (§2.2–2.3), as a plain library.

- `taxonomy`: every metric's class, scale and direction (light: safe in the web process).
- `detection`: instance-grounded precision / recall / F1 / #mistakes against the gold set (Table 1).
- `health`: model-free universal caption length and structure adherence.
- `clipscore`: model-based universal CLIPScore (imports torch and open_clip).
- `judge`: model-based universal VLM judge with a versioned rubric.
- `stats`: paired tests, bootstrap CIs, Holm correction, Table 2 / Table 3 layouts.
- `sampling`: the evaluation set outside the gold set, and the leakage check.

Nothing is imported here: import the module you need, so a page computing Table 1 never loads torch.
"""
