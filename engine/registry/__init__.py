"""berth's registry client: the OCI distribution API for pull, push and login.

One concern per module: names (where a reference's registry is and how it is reached), media
(the manifest formats accepted and their limits), auth (bearer tokens and basic auth), transport
(TLS per registry, insecure registries), client (the HTTP API), platforms (choosing from an
index), progress (dockerd's JSON-lines messages), pull and
push (the two flows, which call the image store).
"""
