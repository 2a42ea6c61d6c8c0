"""Which unlabeled photos to label next: uncertain, hard to reconstruct, and not near-duplicates.

    from weedseg.suggest.config import SuggestConfig
    from weedseg.suggest.runner import suggest_labels
    result = suggest_labels(SuggestConfig(images="farm/photos", model="bundle/", k=20,
                                          out="to_label.txt"))

Modules: `config` (the knobs), `signals` (prediction entropy from a bundle or a run, SMS
reconstruction difficulty from a pretraining run), `embeddings` (cheap image descriptors),
`selection` (rank-normalised scores + greedy k-center diversity), `sheet` (the contact sheet),
`runner` (read, score, pick, write).
"""
