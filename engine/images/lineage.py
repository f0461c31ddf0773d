"""Which image an image was built on, and what that means for listing and removal.

A build step's image records its parent (the image the step ran on) as "Parent" in its store
record (engine/build writes it). As in dockerd's image store, an untagged image that another
image was built on is not dangling: it is a step of that image's build, kept for the build
cache, listed only with `docker images -a`, removed with its last child, and refused by
`docker rmi <id>` while a child needs it."""
from __future__ import annotations

from .store import Image, ImageStore


def parent_of(image: Image) -> str:
    return image.record.get("Parent", "")


def set_parent(images: ImageStore, image: Image, parent_id: str) -> None:
    """Record image's parent (the image a build step ran on) in its store record."""
    image.record["Parent"] = parent_id
    image.record["BuiltStep"] = True    # a build's step: a candidate for its cache
    images.store.put_image(image.id, image.created, image.record)


def with_children(images: ImageStore) -> set[str]:
    """The IDs of the images some other image names as its parent."""
    return {p for p in (parent_of(i) for i in images.list()) if p}
