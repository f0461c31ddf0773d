"""Which image an image was built on, and what that means for listing and removal.

A build step's image, and a committed container's, records its parent (the image the step or
the container ran on) as "Parent" in its store record (engine/build and the commit API write
it). As in dockerd's image store, an untagged image that another image was built on is not
dangling: it is a step of that image's build, kept for the build cache, listed only with
`docker images -a`, removed with its last child, and refused by `docker rmi <id>` while a child
needs it; and `docker history` names each row's image by walking the parents."""
from __future__ import annotations

from collections.abc import Iterator

from .store import Image, ImageStore


def parent_of(image: Image) -> str:
    return image.record.get("Parent", "")


def set_parent(images: ImageStore, image: Image, parent_id: str, *, build_step: bool) -> None:
    """Record image's parent in its store record; a build step's image is also a candidate
    for the build cache (a committed one is not, as in dockerd)."""
    image.record["Parent"] = parent_id
    if build_step:
        image.record["BuiltStep"] = True
    images.store.put_image(image.id, image.created, image.record)


def ancestry(images: ImageStore, image: Image) -> Iterator[Image]:
    """image, then its parent, that one's parent, and so on while the store has them."""
    current: Image | None = image
    while current is not None:
        yield current
        parent_id = parent_of(current)
        current = images.images.get(parent_id) if parent_id else None


def with_children(images: ImageStore) -> set[str]:
    """The IDs of the images some other image names as its parent."""
    return {p for p in (parent_of(i) for i in images.list()) if p}
