"""Push triggers: the transaction that changes what a shop should show queues one push per
(kind, shop), debounced, however many changes follow before the push takes it; a batch that
lands after a newer value went out queues one more push instead of leaving the old value."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from hub.application import shops, stock
from hub.bootstrap import Container, bootstrap
from hub.infrastructure.bindings import BINDINGS, STATES
from hub.infrastructure.outbound import (
    OPERATIONS,
    OUTBOX,
    TRIGGERS,
    request_operation,
    trigger_pushes,
)
from sync.infrastructure import pushes
from tests.conftest import Backend
from tests.factories import ADMIN, World


@pytest.fixture
def world(backend: Backend) -> Iterator[World]:
    settings = backend.settings.model_copy(update={"push_debounce_ms": 250})
    container = bootstrap(settings)
    yield World(container)
    container.close()


def triggers(container: Container, kind: str = "stock") -> list[tuple[str, int]]:
    """The queued pushes of ``kind`` (binding a variant also queues its images)."""
    with container.engine.connect() as db:
        rows = db.execute(
            select(TRIGGERS.c.kind, TRIGGERS.c.shop_id).where(TRIGGERS.c.kind == kind)
        )
        return [tuple(row) for row in rows]


def push_messages(container: Container) -> list[tuple[dict[str, object], int]]:
    with container.engine.connect() as db:
        rows = db.execute(
            select(OUTBOX.c.payload, OUTBOX.c.delay_ms)
            .where(OUTBOX.c.actor == "stock.push")
            .order_by(OUTBOX.c.id)
        )
        return [(dict(payload), delay) for payload, delay in rows]


def set_on_hand(world: World, on_hand: int) -> None:
    with world.container.uow() as uow:
        stock.set_on_hand(uow, ADMIN, world.tee_id, on_hand=on_hand)
        uow.commit()


def test_a_burst_of_changes_queues_one_debounced_push(world: World) -> None:
    expected = {"shop_id": world.shop_id, "kind": "stock"}
    assert triggers(world.container) == [("stock", world.shop_id)]  # binding it queued one
    assert push_messages(world.container) == [(expected, 250)]
    for on_hand in (9, 8, 7):
        set_on_hand(world, on_hand)
    assert triggers(world.container) == [("stock", world.shop_id)]
    assert push_messages(world.container) == [(expected, 250)]


def test_once_a_push_takes_its_trigger_the_next_change_queues_another(world: World) -> None:
    with world.container.engine.begin() as db:
        pushes.take_trigger(db, "stock", world.shop_id)
    assert triggers(world.container) == []
    set_on_hand(world, 4)
    assert triggers(world.container) == [("stock", world.shop_id)]
    assert len(push_messages(world.container)) == 2


def test_a_change_that_reaches_no_binding_queues_nothing(world: World) -> None:
    with world.container.engine.begin() as db:
        pushes.take_trigger(db, "stock", world.shop_id)
    with world.container.uow() as uow:
        blank = stock.create_blank(uow, ADMIN, code="MUG", name="Mug", on_hand=3)
        uow.commit()
    with world.container.uow() as uow:
        stock.set_on_hand(uow, ADMIN, blank.id or 0, on_hand=5)
        uow.commit()
    assert triggers(world.container) == []


def test_a_batch_overtaken_by_a_newer_push_queues_the_current_value_again(world: World) -> None:
    binding_id = world.binding_id()
    with world.container.engine.begin() as db:
        pushes.take_trigger(db, "stock", world.shop_id)
        db.execute(
            STATES.update()
            .where(STATES.c.kind == "stock")
            .values(desired_version=5, pushed_version=5)
        )
        overtaken = pushes.record_pushed(
            db, "stock", [pushes.Member(binding_id, 3, 7)], debounce_ms=10
        )
        desired = db.execute(
            select(STATES.c.desired_version).where(STATES.c.kind == "stock")
        ).scalar_one()
        last_pushed = db.execute(
            select(BINDINGS.c.last_pushed_quantity).where(BINDINGS.c.id == binding_id)
        ).scalar_one()
    assert overtaken == [binding_id]
    assert desired == 6
    assert last_pushed == 7  # what the marketplace shows now: the next push must not skip
    messages = push_messages(world.container)
    assert messages[-1] == ({"shop_id": world.shop_id, "kind": "stock"}, 10)  # pushed again
    with world.container.engine.begin() as db:  # the same batch recorded twice: no effect
        assert (
            pushes.record_pushed(db, "stock", [pushes.Member(binding_id, 6, 7)], debounce_ms=10)
            == []
        )
        assert (
            pushes.record_pushed(db, "stock", [pushes.Member(binding_id, 6, 7)], debounce_ms=10)
            == []
        )
    assert len(push_messages(world.container)) == len(messages)


def test_resuming_a_paused_shop_queues_its_pushes_again(world: World) -> None:
    with world.container.engine.begin() as db:
        pushes.take_trigger(db, "stock", world.shop_id)  # a push taken while the shop was paused
    for paused in (True, False):
        with world.container.uow() as uow:
            shops.set_shop_state(uow, world.shop_id, world.principal, paused=paused)
            uow.commit()
    assert triggers(world.container) == [("stock", world.shop_id)]


def test_many_pull_hints_for_a_shop_make_one_queued_pull(world: World) -> None:
    from hub.infrastructure.outbound import PULL_TRIGGER_KIND, trigger_pull

    with world.container.engine.begin() as db:
        assert trigger_pull(db, world.shop_id, delay_ms=0) is True
        assert trigger_pull(db, world.shop_id, delay_ms=0) is False
    with world.container.engine.connect() as db:
        pulls = db.execute(select(OUTBOX.c.payload).where(OUTBOX.c.actor == "orders.pull")).all()
    assert [dict(row.payload) for row in pulls] == [{"shop_id": world.shop_id}]
    assert triggers(world.container, kind=PULL_TRIGGER_KIND) == [(PULL_TRIGGER_KIND, world.shop_id)]


def forget_a_change(world: World) -> None:
    """What the race leaves: the push took the trigger, then a change committed whose own
    trigger insert had found that trigger still there (``ON CONFLICT DO NOTHING``)."""
    with world.container.engine.begin() as db:
        pushes.take_trigger(db, "stock", world.shop_id)
        db.execute(
            STATES.update()
            .where(STATES.c.kind == "stock")
            .values(desired_version=STATES.c.pushed_version + 1)
        )


def sweep(world: World) -> list[tuple[str, int]]:
    with world.container.engine.begin() as db:
        return trigger_pushes(db, pushes.forgotten_pushes(), debounce_ms=10)


def test_a_due_binding_nothing_will_push_is_queued_again_by_the_sweep(world: World) -> None:
    forget_a_change(world)
    before = len(push_messages(world.container))
    assert sweep(world) == [("stock", world.shop_id)]
    assert triggers(world.container) == [("stock", world.shop_id)]
    assert push_messages(world.container)[before:] == [
        ({"shop_id": world.shop_id, "kind": "stock"}, 10)
    ]
    assert sweep(world) == []  # queued now: the next sweep leaves it alone


def test_the_sweep_leaves_shops_with_work_in_flight_or_paused(world: World) -> None:
    forget_a_change(world)
    with world.container.engine.begin() as db:
        request_operation(
            db,
            kind="stock.batch",
            shop_id=world.shop_id,
            key="in-flight",
            payload={},
            actor="stock.batch",
            queue="stock",
        )
    assert sweep(world) == []  # the operation in flight may be the one that pushes it
    with world.container.engine.begin() as db:
        db.execute(OPERATIONS.update().values(status="succeeded"))
    with world.container.uow() as uow:
        shops.set_shop_state(uow, world.shop_id, world.principal, paused=True)
        uow.commit()
    with world.container.engine.begin() as db:
        pushes.take_trigger(db, "stock", world.shop_id)  # pausing queued nothing to push
    assert sweep(world) == []  # paused: due on purpose until it resumes
