"""Questions that compare when events happened: parsed, each event found and dated on its
own, the dates compared, every event's passage cited; abstained on when an event is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.answer.analysis import read_question
from rag.answer.generators import Generators
from rag.answer.stream import Answerer, Query
from rag.answer.timeline import compare, date_event
from rag.config import Settings
from rag.index.embedding import SentenceTransformerEmbedder
from rag.ingest.loaders import content_hash, parse_text
from rag.lang.zh.events import parse_comparison, parse_same_day
from rag.library import index_documents
from rag.service import open_pipeline
from rag.types import Chunk, Comparison, GenerationRequest, Passage


@pytest.mark.parametrize(
    ("question", "events", "relation"),
    [
        ("郭清获得银牌和法国实施复课政策哪个事件更早发生？", ("郭清获得银牌", "法国实施复课政策"), "earliest"),
        (
            "货拉拉事件、河北省两批次药品不符合标准和四川鑫和引线公司爆炸事故，哪个事件最早发生？",
            ("货拉拉事件", "河北省两批次药品不符合标准", "四川鑫和引线公司爆炸事故"),
            "earliest",
        ),
        (
            "汪小菲和大S参加女儿幼儿园毕业典礼和周铁农同志逝世哪个事件更早？",
            ("汪小菲和大S参加女儿幼儿园毕业典礼", "周铁农同志逝世"),
            "earliest",
        ),
        (
            "辽宁男篮负于迪拜青年队，上海海港队追平13连胜纪录，这两个事件哪个更晚发生？",
            ("辽宁男篮负于迪拜青年队", "上海海港队追平13连胜纪录"),
            "latest",
        ),
        (
            "华为Mate 60系列发布和中美海洋事务磋商是在同一年进行的吗？",
            ("华为Mate 60系列发布", "中美海洋事务磋商"),
            "year",
        ),
        ("雷军的建议提交和小米14 Ultra的首销是在同一个月吗？", ("雷军的建议提交", "小米14 Ultra的首销"), "month"),
        (
            "惠州奥园的投诉和乌克兰总统呼吁重启谈判是同一天发生的吗？",
            ("惠州奥园的投诉", "乌克兰总统呼吁重启谈判"),
            "day",
        ),
    ],
)
def test_a_comparison_is_parsed_into_its_events_and_relation(
    question: str, events: tuple[str, ...], relation: str
) -> None:
    assert parse_comparison(question) == Comparison(events, relation)


@pytest.mark.parametrize(
    "question",
    [
        "凤凰县追回了多少名农民工的工资？",
        "谁最早提出了这个方案？",
        "2023年8月，小鹏汽车与哪家公司达成战略合作？",
        "中国和美国哪个国家的人口更多？",
        # what is compared is not when the events happened
        "华为和小米哪家公司先发布折叠屏手机？",
        "苹果公司和微软公司在同一时间发布了什么产品？",
        "李明和王芳同一天入职，谁的工资更高？",
        "中国队和日本队谁先进球？",
        "这两部电影是同一天上映的吗？",
    ],
)
def test_other_questions_are_not_comparisons(question: str) -> None:
    assert parse_comparison(question) is None


def _chunk(doc: str, text: str, published: str = "") -> Chunk:
    return Chunk(f"{doc}#0", doc, "", text, 0, len(text), published)


def _request(question: str, *texts: str) -> GenerationRequest:
    comparison = parse_comparison(question)
    assert comparison is not None
    passages = tuple(Passage(_chunk(f"d{n}", text), 0.8) for n, text in enumerate(texts))
    candidates = tuple(tuple(range(len(texts))) for _ in comparison.events)
    return GenerationRequest(
        read_question(question), passages, (), comparison=Comparison(comparison.events, comparison.relation, candidates)
    )


def test_the_earlier_event_is_named_with_both_dates_cited() -> None:
    request = _request(
        "乌镇举办互联网大会和长沙开通地铁六号线哪个事件更早发生？",
        "2023年11月8日，第十届世界互联网大会在乌镇举办，主题是建设网络空间命运共同体。",
        "2022年6月28日，长沙地铁六号线开通运营，全长48.11公里。",
    )
    choice = compare(request, request.comparison)  # type: ignore[arg-type]
    assert not isinstance(choice, str)
    assert choice.draft
    assert choice.answer.startswith("长沙开通地铁六号线更早：它在2022年6月28日 [2]")
    assert "2023年11月8日 [1]" in choice.answer
    assert "乌镇" not in choice.answer  # only the chosen event is named


def test_same_month_is_judged_from_both_dates() -> None:
    texts = ("2024年4月5日，马斯克宣布特斯拉股价下跌后回应。", "2024年4月23日，强生宣布宋为群辞去中国区主席职务。")
    request = _request("特斯拉股价下跌和宋为群辞去强生中国区主席职务是在同一个月吗？", *texts)
    choice = compare(request, request.comparison)  # type: ignore[arg-type]
    assert not isinstance(choice, str) and choice.answer.startswith("是的。")
    request = _request("特斯拉股价下跌和宋为群辞去强生中国区主席职务是在同一天吗？", *texts)
    choice = compare(request, request.comparison)  # type: ignore[arg-type]
    assert not isinstance(choice, str) and choice.answer.startswith("不是。")


def test_an_event_is_bound_by_the_words_that_tell_it_from_the_others() -> None:
    """神舟十六号 shares most of its words with 神舟十五号: only 十六 tells them apart."""
    request = _request(
        "神舟十五号发射和神舟十六号发射是同一天吗？",
        "2022年11月29日，神舟十五号载人飞船发射成功。",
        "2023年5月30日，神舟十六号载人飞船发射成功。",
    )
    choice = compare(request, request.comparison)  # type: ignore[arg-type]
    assert not isinstance(choice, str)
    assert choice.answer == "不是。神舟十五号发射在2022年11月29日 [1]；神舟十六号发射在2023年5月30日 [2]。"
    alone = _request("神舟十五号发射和神舟十六号发射是同一天吗？", "2022年11月29日，神舟十五号载人飞船发射成功。")
    assert compare(alone, alone.comparison) == "no passage reports 神舟十六号发射"  # type: ignore[arg-type]


def test_dates_that_cannot_order_the_events_are_an_abstention() -> None:
    request = _request(
        "甲公司上市、乙公司上市和丙公司上市，哪个最晚？",
        "2021年5月，甲公司上市。",
        "2021年3月1日，乙公司上市。",
        "2021年，丙公司上市。",
    )
    # 丙 gives only its year, so it may be later than 甲: no event is surely the latest.
    assert "precisely enough" in compare(request, request.comparison)  # type: ignore[arg-type,operator]


def test_a_date_only_the_articles_dateline_gives_is_said_to_be_a_reports() -> None:
    request = _request(
        "长沙开通地铁六号线和乌镇举办互联网大会哪个事件更早发生？",
        "2022年6月28日，本报讯。长沙地铁六号线开通运营。",
        "2023年11月8日，第十届世界互联网大会在乌镇举办。",
    )
    choice = compare(request, request.comparison)  # type: ignore[arg-type]
    assert not isinstance(choice, str)
    assert choice.answer.startswith("长沙开通地铁六号线更早：它见于2022年6月28日的报道 [1]；另一件在2023年11月8日 [2]")


def test_an_event_no_passage_reports_is_an_abstention() -> None:
    request = _request(
        "乌镇举办互联网大会和火星基地建成哪个事件更早发生？",
        "2023年11月8日，第十届世界互联网大会在乌镇举办。",
        "2022年6月28日，长沙地铁六号线开通运营。",
    )
    assert compare(request, request.comparison) == "no passage reports 火星基地建成"  # type: ignore[arg-type]


def test_an_event_is_dated_by_its_sentence_then_dateline_then_publication_day() -> None:
    text = "2019年7月17日，苹果公司宣布停产iPhone 6系列。iPhone 6系列于2014年9月10日发布，是首款大屏机。"
    assert date_event("iPhone 6系列发布", _chunk("d", text), 0).when == (2014, 9, 10)  # type: ignore[union-attr]
    assert date_event("苹果停产iPhone 6系列", _chunk("d", text), 0).when == (2019, 7, 17)  # type: ignore[union-attr]
    yearless = "7月2日起，加拿大对进口中国电动汽车征税。此前已开始公众咨询。"
    dated = date_event("中国电动汽车公众咨询", _chunk("d", yearless, "2024-06-25"), 0)
    assert dated is not None and dated.when == (2024, 7, 2) and dated.written == "2024年7月2日"
    assert date_event("公众咨询", _chunk("d", "此前已开始公众咨询。"), 0) is None


@pytest.fixture(scope="module")
def news_answerer(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, real_embedder: SentenceTransformerEmbedder
) -> Answerer:
    """Three short news articles indexed with the real model."""
    settings = Settings(index_dir=tmp_path_factory.mktemp("news"), cache_dir=model_cache, generator="extractive")
    articles = {
        "wuzhen": "2023年11月8日，第十届世界互联网大会在乌镇开幕，主题是建设网络空间命运共同体。",
        "metro": "2022年6月28日，长沙地铁六号线开通运营，全长48.11公里，设站34座。",
        "rice": "2022年10月12日，湖南省早稻收获完成，全省早稻总产量达到一百万吨。",
        "rain": "2022年6月28日，湖南省气象台发布暴雨预警，全省最大降雨量达到120毫米。",
    }
    documents = [parse_text(text, name, f"{name}.txt", content_hash(text.encode())) for name, text in articles.items()]
    index_documents(settings, documents, real_embedder)
    pipeline = open_pipeline(settings, real_embedder)
    return Answerer(pipeline, Generators(settings), settings)


def test_a_comparison_is_answered_from_each_events_own_article(news_answerer: Answerer) -> None:
    answer = news_answerer.ask(Query("世界互联网大会在乌镇开幕和长沙地铁六号线开通运营，哪个事件更早发生？"))
    assert not answer.abstained
    assert answer.text.startswith("长沙地铁六号线开通运营更早")
    assert {c.doc_id for c in answer.citations} == {"wuzhen", "metro"}
    assert [c.published for c in answer.citations] == ["2022-06-28", "2023-11-08"]

    same = news_answerer.ask(Query("长沙地铁六号线开通运营和湖南早稻收获完成是同一年吗？"))
    assert same.text.startswith("是的。") and len(same.citations) == 2

    absent = news_answerer.ask(Query("长沙地铁六号线开通运营和北京冬奥会开幕哪个事件更早？"))
    assert absent.abstained and "北京冬奥会开幕" in absent.abstain_reason
    assert absent.timings_ms["search_ms"] > 0


def test_a_computed_answer_reports_the_extractive_generator(news_answerer: Answerer) -> None:
    stream = news_answerer.open(Query("世界互联网大会在乌镇开幕和长沙地铁六号线开通运营，哪个事件更早发生？"))
    assert stream.generator == "extractive"
    assert not stream.answer().abstained


class _RefusingModel:
    """A language model that must not be asked: a comparison is computed."""

    name = "llama-cpp"

    def stream(self, request: GenerationRequest, call: object):  # type: ignore[no-untyped-def]
        raise AssertionError("the model was asked to write a computed answer")


def test_a_language_model_does_not_write_a_computed_comparison() -> None:
    from rag.answer.evidence import Thresholds
    from rag.answer.stream import final, respond

    request = _request(
        "乌镇举办互联网大会和长沙开通地铁六号线哪个事件更早发生？",
        "2023年11月8日，第十届世界互联网大会在乌镇举办。",
        "2022年6月28日，长沙地铁六号线开通运营。",
    )
    answer = final(respond(request, _RefusingModel(), Thresholds.from_settings(Settings()), preview=True))  # type: ignore[arg-type]
    assert answer.text == "长沙开通地铁六号线更早：它在2022年6月28日 [1]；另一件在2023年11月8日 [2]。"
    assert [c.doc_id for c in answer.citations] == ["d1", "d0"]


@pytest.mark.parametrize(
    ("question", "parsed"),
    [
        ("中国空间站梦天实验舱发射任务成功当天，湖北省新增了多少本土无症状感染者？",
         ("中国空间站梦天实验舱发射任务成功", "湖北省新增了多少本土无症状感染者？")),
        ("美国国务卿布林肯访华当日，哪家媒体发表了社论？", ("美国国务卿布林肯访华", "哪家媒体发表了社论？")),
        ("2024年3月5日当天，湖南下了多少雨？", None),  # the question gives the day itself
        ("凤凰县追回了多少名农民工的工资？", None),
    ],
)  # fmt: skip
def test_a_same_day_question_names_its_event_and_what_it_asks(question: str, parsed: tuple[str, str] | None) -> None:
    assert parse_same_day(question) == parsed
    assert (read_question(question).form == "same-day") == (parsed is not None)


def test_a_same_day_question_is_asked_on_the_day_its_event_happened(news_answerer: Answerer) -> None:
    """The event's article dates the question; the answer comes from that day's article."""
    pipeline = news_answerer._pipeline
    request = pipeline.retrieve(read_question("长沙地铁六号线开通运营当天，湖南最大降雨量达到多少？"), 3).request
    assert request.question == "湖南最大降雨量达到多少？"
    assert request.asked_date == (2022, 6, 28)
    assert request.passages[0].chunk.doc_id == "rain"
    # An event no article reports dates nothing: the question is asked as written.
    request = pipeline.retrieve(read_question("北京冬奥会开幕当天，湖南最大降雨量达到多少？"), 3).request
    assert request.question == "北京冬奥会开幕当天，湖南最大降雨量达到多少？" and request.asked_date is None
