"""A/B tests between a prompt's versions: starting, assigning, outcomes, results;
the statistics are in `abtest.py`."""

from __future__ import annotations

import math

import structlog
from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llmdocs.core.db import utcnow
from llmdocs.core.ids import new_id
from llmdocs.core.spaces import SpaceView
from llmdocs.services.promptstore import abtest
from llmdocs.services.promptstore.errors import (
    Conflict,
    Invalid,
    NotFound,
)
from llmdocs.services.promptstore.models import (
    AbOutcome,
    AbTest,
    Prompt,
)
from llmdocs.services.promptstore.prompts import Prompts
from llmdocs.services.promptstore.schemas import (
    AbResults,
    AbTestIn,
    AbTestOut,
    OutcomeIn,
    VariantResult,
)
from llmdocs.services.promptstore.spaces import visible_prompts

log = structlog.get_logger(__name__)

CONFIDENCE = 0.95


class Experiments(Prompts):
    """The A/B tests of the store's prompts."""

    @staticmethod
    def _test_out(test: AbTest) -> AbTestOut:
        return AbTestOut.model_validate(test, from_attributes=True)

    async def create_test(self, body: AbTestIn) -> AbTestOut:
        async with self.db.transaction() as session:
            prompt = await self._prompt(session, body.prompt)
            for variant in body.variants:
                row = await self._version(session, prompt, variant.version)
                if row.state == "archived":
                    raise Conflict(f"Version {row.version} is archived.")
            running = await session.scalar(select(AbTest.id).where(
                AbTest.prompt_id == prompt.id, AbTest.status == "running"))
            if running is not None:
                raise Conflict(f"A/B test {running} is already running on "
                               f"'{prompt.name}'; stop it first.")
            test = AbTest(id=new_id(), prompt_id=prompt.id, name=body.name, status="running",
                          variants=[v.model_dump() for v in body.variants],
                          metric=body.metric, significance=body.significance,
                          min_samples=body.min_samples, auto_stop=body.auto_stop,
                          promote_label=body.promote_label, created_at=utcnow())
            session.add(test)
        await self._invalidate(prompt.name)
        return self._test_out(test)

    async def _test(self, session: AsyncSession, test_id: str) -> AbTest:
        test = await session.get(AbTest, test_id)
        if test is None:
            raise NotFound(f"No A/B test '{test_id}'.")
        return test

    async def get_test(self, test_id: str) -> AbTestOut:
        async with self.db.session() as session:
            return self._test_out(await self._test(session, test_id))

    async def list_tests(self, prompt: str | None, view: SpaceView) -> list[AbTestOut]:
        query = select(AbTest).order_by(AbTest.created_at.desc())
        if not view.everything:  # the tests of the caller's spaces' prompts
            query = query.where(AbTest.prompt_id.in_(
                select(Prompt.id).where(*visible_prompts(view))))
        async with self.db.session() as session:
            if prompt is not None:
                query = query.where(AbTest.prompt_id == (await self._prompt(session, prompt)).id)
            return [self._test_out(t) for t in await session.scalars(query)]

    async def assignment(self, test_id: str, subject: str) -> int:
        test = await self.get_test(test_id)
        return abtest.assign(test.id, subject,
                             [(v["version"], v["weight"]) for v in test.variants])

    async def _samples(self, session: AsyncSession, test: AbTest
                       ) -> list[tuple[int, abtest.Sample]]:
        column = {
            "success": case((AbOutcome.success.is_(True), 1.0),
                            (AbOutcome.success.is_(False), 0.0), else_=None),
            "score": AbOutcome.score, "latency_ms": AbOutcome.latency_ms,
            "cost": AbOutcome.cost,
        }[test.metric]
        rows = await session.execute(
            select(AbOutcome.version, func.count(column), func.sum(column),
                   func.sum(column * column))
            .where(AbOutcome.test_id == test.id).group_by(AbOutcome.version))
        found = {v: abtest.Sample(int(n), float(s or 0), float(q or 0))
                 for v, n, s, q in rows.all()}
        return [(int(str(v["version"])), found.get(int(str(v["version"])),
                                                   abtest.Sample(0, 0.0, 0.0)))
                for v in test.variants]

    async def results(self, test_id: str) -> AbResults:
        async with self.db.session() as session:
            test = await self._test(session, test_id)
            samples = await self._samples(session, test)
        return _results(test, samples)

    async def record_outcome(self, test_id: str, body: OutcomeIn) -> AbResults:
        """Store one outcome; a test with auto-stop ends itself once a winner is
        significant, and its winner gets the promote label."""
        async with self.db.transaction() as session:
            test = await self._test(session, test_id)
            if test.status != "running":
                raise Conflict(f"A/B test {test_id} is {test.status}.")
            if body.version not in [v["version"] for v in test.variants]:
                raise Invalid(f"Version {body.version} is not a variant of this test.",
                              [{"field": "version", "message": "not a variant"}])
            session.add(AbOutcome(id=new_id(), test_id=test.id, created_at=utcnow(),
                                  **body.model_dump()))
        if test.auto_stop:
            async with self.db.session() as session:
                samples = await self._samples(session, test)
            win = abtest.winner(test.metric, samples, test.significance, test.min_samples)
            if win is not None:
                await self._finish(test_id, "completed", win)
        return await self.results(test_id)

    async def stop_test(self, test_id: str, promote: bool) -> AbResults:
        results = await self.results(test_id)
        if results.test.status != "running":
            raise Conflict(f"A/B test {test_id} is {results.test.status}.")
        await self._finish(test_id, "stopped", results.winner if promote else None)
        return await self.results(test_id)

    async def _finish(self, test_id: str, status: str, winner: int | None) -> None:
        """End a test (once: a concurrent finisher loses) and promote its winner."""
        async with self.db.transaction() as session:
            ended = await session.execute(
                update(AbTest).where(AbTest.id == test_id, AbTest.status == "running")
                .values(status=status, winner=winner, stopped_at=utcnow()))
            if ended.rowcount != 1:  # type: ignore[attr-defined]
                return
            test = await self._test(session, test_id)
            prompt = await self._prompt(session, test.prompt_id)
            if winner is not None and test.promote_label:
                row = await self._version(session, prompt, winner)
                if row.state == "draft":
                    row.state = "published"
                await self._put_label(session, prompt.id, test.promote_label, winner)
        log.info("abtest finished", test_id=test_id, status=status, winner=winner)
        await self._invalidate(prompt.name, *((prompt.id, winner),) if winner else ())


def _results(test: AbTest, samples: list[tuple[int, abtest.Sample]]) -> AbResults:
    weights = {int(str(v["version"])): float(str(v["weight"])) for v in test.variants}
    control = samples[0][1]
    corrected = test.significance / max(1, len(samples) - 1)
    interval = (abtest.proportion_interval if test.metric == "success"
                else abtest.mean_interval)
    variants = []
    for index, (version, sample) in enumerate(samples):
        result = None if index == 0 else abtest.compare(test.metric, control, sample)
        variants.append(VariantResult(
            version=version, weight=weights[version], n=sample.n,
            mean=sample.mean if sample.n else None,
            interval=interval(sample, CONFIDENCE),
            p_value=None if result is None else result.p_value,
            statistic=None if result is None or math.isinf(result.statistic)
            else result.statistic,
            difference=None if result is None else result.difference,
            significant=result is not None and result.p_value < corrected))
    current = test.winner if test.status != "running" else abtest.winner(
        test.metric, samples, test.significance, test.min_samples)
    return AbResults(
        test=AbTestOut.model_validate(test, from_attributes=True), metric=test.metric,
        confidence=CONFIDENCE,
        test_kind="two_proportion_z" if test.metric == "success" else "welch_t",
        variants=variants, winner=current)
