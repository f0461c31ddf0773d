"""berth's registry client: the OCI distribution API for pull, push and login.

One concern per module: media (the manifest formats accepted and their limits), auth
(credentials, challenges, bearer tokens), transport (where a registry is reached: TLS with
certs.d, insecure registries, mirrors), client (the HTTP API of one repository), platforms
(choosing from an index), progress (dockerd's JSON-lines messages), and the flows that call the
image store: pull, push and login.
"""
