"""A local model registry (a folder, no server): versions, a `current` pointer, promotion rules.

    REGISTRY/versions/v0001/bundle/        verified copy of the bundle (weedseg.json checksums)
    REGISTRY/versions/v0001/checkpoint/    training weights, so the version can be retrained
    REGISTRY/versions/v0001/version.json   metrics, farm validation split, lineage
    REGISTRY/current.json                  {"current": "v0002", "history": ["v0001", "v0002"]}

Every write is atomic (a version folder appears whole or not at all; the pointer is one rename).
`store` reads and writes the folder, `sources` reads what can be registered, `actions` holds
`promote` and `rollback`, `service` tells a running server to reload.
"""
