"""Images out: render each upload once per (content, spec), then push each listing's mockups
when the list of rendition keys differs from the one last pushed.

``render`` (actor ``images.render``, an operation keyed by source and spec fingerprints) reads
the source from storage into a temporary file, makes the missing renditions with one decode,
stores them HEAD-before-PUT, and bumps the image version of every binding of the products that
use the source. A corrupt, truncated or oversized file fails the job with the reason and marks
its images rejected; nothing else is touched.

``push_due`` (actor ``images.push``) takes the (images, shop) trigger and groups the due
bindings by listing; a listing's images are its products' mockups in rank order (variant
mockups only for the variants bound on it), cut to the marketplace's count limit. Print files
are never pushed, and a product without mockups leaves the listing's own photos alone. A
listing whose mockups are still rendering waits for the render's bump.
``push_listing`` (actor ``images.push_listing``) replaces the listing's images with signed,
expiring URLs of our API (marketplaces fetch without our key, possibly a day later).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from typing import Any

from sqlalchemy import Connection

from connectors.contract import (
    ImageRef,
)
from hub.domain.shops import PushKind, ShopStatus
from hub.infrastructure import images as image_rows
from hub.infrastructure.bindings import SqlBindingRepository
from hub.infrastructure.outbound import (
    IMAGES_LISTING_ACTOR,
    IMAGES_QUEUE,
    request_operation,
)
from imaging import render as renderer
from imaging.signed_urls import sign
from imaging.specs import RenditionSpec, load_specs
from imaging.storage import image_key
from sync.application import operations_run as run
from sync.domain.policies import IMAGES_LISTING, IMAGES_RENDER, policy
from sync.infrastructure import operations as ops
from sync.infrastructure import pushes
from sync.worker.runtime import SyncRuntime, shop_context

log = logging.getLogger(__name__)
IMAGES_KIND = PushKind.IMAGES.value
LISTING_ROUTE = run.Route(IMAGES_LISTING, IMAGES_LISTING_ACTOR, IMAGES_QUEUE)


def specs_of(runtime: SyncRuntime) -> dict[str, RenditionSpec]:
    return load_specs(runtime.container.settings.image_specs)


# --------------------------------------------------------------------------------------------
# Render
# --------------------------------------------------------------------------------------------


def render(runtime: SyncRuntime, operation_id: int) -> None:
    rules = policy(IMAGES_RENDER)
    container = runtime.container
    with container.engine.begin() as db:
        operation = ops.claim(db, operation_id, lease_seconds=rules.lease_seconds)
    if operation is None:
        return
    sha, source_key = operation.payload["source_sha256"], operation.payload["source_key"]
    specs = specs_of(runtime)
    with container.engine.connect() as db:
        missing = [
            spec
            for name, spec in sorted(specs.items())
            if not image_rows.rendition_keys(db, [sha], name, spec.fingerprint())
        ]
    started = time.monotonic()
    made: list[dict[str, Any]] = []
    if missing:
        store = runtime.object_store()
        try:
            with tempfile.NamedTemporaryFile(prefix="hub-render-", suffix=".src") as source:
                _, chunks = store.open(source_key)
                for chunk in chunks:
                    source.write(chunk)
                source.flush()
                renditions = renderer.render_all(
                    source.name, missing, max_pixels=container.settings.max_image_pixels
                )
        except renderer.ImageRejected as rejected:
            with container.engine.begin() as db:
                image_rows.set_status(db, sha, image_rows.REJECTED, rejected.reason)
            run.refused(
                runtime, operation, f"image rejected: {rejected.reason}", run.elapsed_ms(started)
            )
            return
        by_name = {spec.name: spec for spec in missing}
        stored: list[image_rows.StoredRendition] = []
        for rendition in renditions:
            spec = by_name[rendition.name]
            key = image_key(sha, rendition.name, spec.fingerprint(), rendition.extension)
            store.put_if_absent(key, rendition.data, content_type=rendition.content_type)
            stored.append(
                image_rows.StoredRendition(
                    source_sha256=sha,
                    rendition=rendition.name,
                    fingerprint=spec.fingerprint(),
                    key=key,
                    content_type=rendition.content_type,
                    size_bytes=len(rendition.data),
                    width=rendition.width,
                    height=rendition.height,
                )
            )
            made.append({"rendition": rendition.name, "key": key, "bytes": len(rendition.data)})
    with container.engine.begin() as db:
        for item in stored if missing else []:
            image_rows.add_rendition(db, item)
        image_rows.set_status(db, sha, image_rows.RENDERED)
        products = {image.product_id for image in image_rows.images_of_source(db, sha)}
        variants = pushes.variants_of_products(db, products)
        SqlBindingRepository(db, push_debounce_ms=container.settings.push_debounce_ms).bump(
            [PushKind.IMAGES], variant_ids=variants
        )
        ops.record_attempt(db, operation.id, ok=True, duration_ms=run.elapsed_ms(started))
        ops.finish(db, operation.id, ops.SUCCEEDED, result={"renditions": made})


# --------------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------------


def push_due(runtime: SyncRuntime, shop_id: int, kind: str) -> list[int]:
    container = runtime.container
    shop = runtime.shop(shop_id)
    if shop is None:
        return []
    connector = runtime.connector(shop.marketplace.value)
    limit = connector.capabilities.images.max_images
    spec = specs_of(runtime).get(shop.marketplace.value)
    created: list[int] = []
    with container.uow() as uow:
        db = uow.connection
        uow.lock(f"push:{kind}:{shop_id}")
        pushes.take_trigger(db, kind, shop_id)
        if shop.status is not ShopStatus.ACTIVE or spec is None:
            uow.commit()
            return []
        due = pushes.due_image_bindings(db, shop_id, kind)
        listings: dict[str, list[pushes.DueImageBinding]] = {}
        unpushable: list[pushes.Member] = []
        for binding in due:
            if binding.listing_id:
                listings.setdefault(binding.listing_id, []).append(binding)
            else:
                unpushable.append(pushes.Member(binding.binding_id, binding.desired_version, 0))
        debounce = container.settings.push_debounce_ms
        pushes.record_pushed(db, kind, unpushable, debounce_ms=debounce, set_quantity=False)
        products = {b.product_id for members in listings.values() for b in members}
        mockups = image_rows.mockups(db, products)
        for listing_id, members in sorted(listings.items()):
            bound_variants = {b.variant_id for b in members}
            chosen = [
                image
                for product_id in sorted({b.product_id for b in members})
                for image in mockups.get(product_id, [])
                if image.status != image_rows.REJECTED
                and (image.variant_id is None or image.variant_id in bound_variants)
            ]
            if limit is not None:
                chosen = chosen[:limit]
            keys_by_source = image_rows.rendition_keys(
                db, [image.source_sha256 for image in chosen], spec.name, spec.fingerprint()
            )
            if any(image.source_sha256 not in keys_by_source for image in chosen):
                continue  # still rendering: the render's bump queues this listing again
            keys = [keys_by_source[image.source_sha256] for image in chosen]
            group = [pushes.Member(b.binding_id, b.desired_version, 0) for b in members]
            if not keys:
                # No mockups of ours: the listing keeps the photos the seller put there.
                pushes.record_pushed(db, kind, group, debounce_ms=debounce, set_quantity=False)
                continue
            if all(b.last_pushed_image_keys == keys for b in members):
                pushes.record_pushed(db, kind, group, debounce_ms=debounce, image_keys=keys)
                continue
            document = json.dumps(
                [shop_id, listing_id, keys, sorted((m.binding_id, m.version) for m in group)]
            )
            operation_id = request_operation(
                db,
                kind=IMAGES_LISTING,
                shop_id=shop_id,
                key=f"images:{hashlib.sha256(document.encode()).hexdigest()}",
                payload={
                    "kind": kind,
                    "listing_id": listing_id,
                    "keys": keys,
                    "members": [{"binding_id": m.binding_id, "version": m.version} for m in group],
                },
                actor=IMAGES_LISTING_ACTOR,
                queue=IMAGES_QUEUE,
            )
            if operation_id is not None:
                created.append(operation_id)
        uow.commit()
    if created:
        runtime.publisher.publish()
    return created


def push_listing(runtime: SyncRuntime, operation_id: int) -> None:
    container, settings = runtime.container, runtime.container.settings
    with container.engine.begin() as db:
        operation = ops.claim(db, operation_id, lease_seconds=LISTING_ROUTE.policy.lease_seconds)
    if operation is None:
        return
    payload = operation.payload
    kind, keys = payload["kind"], list(payload["keys"])
    members = [
        pushes.Member(int(m["binding_id"]), int(m["version"]), 0) for m in payload["members"]
    ]
    with container.engine.connect() as db:
        pushed = pushes.pushed_versions(db, kind, [m.binding_id for m in members])
    if all(pushed.get(m.binding_id, m.version) >= m.version for m in members):
        with container.engine.begin() as db:
            ops.finish(db, operation.id, ops.SUPERSEDED, error="every member was pushed newer")
        return
    shop = run.active_shop(runtime, operation, LISTING_ROUTE)
    if shop is None:
        return
    secret = runtime.media_url_secret()
    images = [
        ImageRef(
            url=sign(
                key,
                secret=secret,
                base_url=settings.public_base_url,
                ttl_seconds=settings.media_url_ttl_seconds,
            )
        )
        for key in keys
    ]
    connector = runtime.connector(shop.marketplace.value)
    context = shop_context(shop)
    outcome = run.call_remote(
        runtime,
        operation,
        LISTING_ROUTE,
        shop,
        lambda: connector.replace_listing_images(context, payload["listing_id"], images),
    )
    if outcome is None:
        return
    remote, duration_ms = outcome

    def record(db: Connection) -> None:
        ops.record_attempt(db, operation.id, ok=True, duration_ms=duration_ms)
        ops.finish(db, operation.id, ops.SUCCEEDED, result={"remote_ids": list(remote)})
        pushes.record_pushed(
            db, kind, members, debounce_ms=settings.push_debounce_ms, image_keys=keys
        )

    ops.in_transaction(container.engine, record)
