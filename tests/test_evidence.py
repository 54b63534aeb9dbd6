from __future__ import annotations

from dataclasses import replace

import pytest

from rag.answer.analysis import read_question
from rag.answer.evidence import (
    Kind,
    Thresholds,
    anchors_present,
    answer_span,
    choose,
    date_spans,
    keyword_coverage,
    number_spans,
    person_spans,
)
from rag.answer.generators import create_generator
from rag.answer.generators.extractive import ExtractiveGenerator
from rag.answer.stream import final, respond
from rag.config import Settings
from rag.errors import GeneratorError
from rag.lang import ABSTAIN_TEXT
from rag.types import Answer, Chunk, GenerationRequest, Passage, ScoredSentence

FENGHUANG = "今年来，该县共办理拖欠农民工工资案件 32 起，为 386 名农民工追回拖欠工资 500 余万元。"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("凤凰县为多少名农民工追回了拖欠工资？", Kind.NUMBER),
        ("How many workers did Fenghuang recover wages for?", Kind.NUMBER),
        ("博物馆什么时候开馆？", Kind.DATE),
        ("When did the museum open?", Kind.DATE),
        ("郴州市人社局局长是谁？", Kind.PERSON),
        ("Who is the director of the bureau?", Kind.PERSON),
        ("株洲为什么被称为制造名城？", Kind.OTHER),
    ],
)
def test_question_kind(question: str, kind: Kind) -> None:
    assert read_question(question).asks == kind.value


def test_wanted_units_follow_the_question() -> None:
    assert "名" in read_question("为多少名农民工追回工资").units
    assert "元" in read_question("追回了多少工资").units
    assert "名" in read_question("How many workers got paid?").units
    assert "%" in read_question("What percentage of graduates found jobs?").units
    assert read_question("多少").units == ()


def test_number_span_matches_the_unit_asked_for() -> None:
    assert number_spans(read_question("为多少名农民工追回了工资"), FENGHUANG)[0] == "386 名"
    assert number_spans(read_question("办理了多少起案件"), FENGHUANG)[0] == "32 起"
    assert number_spans(read_question("追回拖欠工资多少钱"), FENGHUANG)[0] == "500 余万元"
    assert number_spans(read_question("How many workers"), FENGHUANG) == ["386 名"]


def test_number_span_keeps_approximations_and_decimals() -> None:
    assert number_spans(read_question("多少家"), "累计关停污染企业 1700多家，关停畜禽养殖场。") == ["1700多家"]
    assert number_spans(read_question("优良率是多少"), "优良率为 89.6%。") == ["89.6%"]


def test_dates_and_people() -> None:
    assert date_spans(read_question("博物馆什么时候开馆？"), "该馆于 2010年 9月开馆，是湖南省内唯一") == ["2010年 9月"]
    assert person_spans(read_question("郴州市人社局局长是谁？"), "郴州市人社局局长莫雄介绍，连续四年来") == ["莫雄"]
    sentence = "该县县委常委、县纪委书记、县监委代主任龙江说。"
    assert person_spans(read_question("县监委代主任是谁"), sentence) == ["龙江"]
    # Titles listed before the name belong to the same person.
    assert person_spans(read_question("县纪委书记是谁"), sentence) == ["龙江"]
    # Asked for a county head, a deputy director is no answer.
    assert person_spans(read_question("凤凰县县长是谁？"), sentence) == []
    assert person_spans(read_question("Who is the director?"), "郴州市人社局局长莫雄介绍，连续四年来") == ["莫雄"]


def _request(question: str, sentences: list[tuple[str, float]]) -> GenerationRequest:
    chunk = Chunk("d:0", "d", "凤凰纪委为农民工解“薪”愁", "".join(s for s, _ in sentences), 0, 100)
    scored = []
    pos = 0
    for text, score in sentences:
        scored.append(ScoredSentence(0, text, pos, pos + len(text), score))
        pos += len(text)
    return GenerationRequest(
        read_question(question), (Passage(chunk, 0.9),), tuple(sorted(scored, key=lambda s: -s.score))
    )


def _answer(request: GenerationRequest, thresholds: Thresholds) -> Answer:
    return final(respond(request, ExtractiveGenerator(), thresholds))


def test_extractive_answers_with_span_evidence_and_citation() -> None:
    request = _request("凤凰县为多少名农民工追回了拖欠工资？", [("近日办结。", 0.90), (FENGHUANG, 0.93)])
    answer = _answer(request, Thresholds(min_sentence=0.8, min_margin=0.0))
    assert not answer.abstained
    assert answer.text == "386 名 [1]"
    assert answer.evidence == FENGHUANG
    (citation,) = answer.citations
    assert citation.title == "凤凰纪委为农民工解“薪”愁"
    assert citation.evidence_end - citation.evidence_start == len(FENGHUANG)


def test_extractive_abstains_on_weak_evidence() -> None:
    request = _request("北京的人口是多少？", [(FENGHUANG, 0.70)])
    answer = _answer(request, Thresholds(min_sentence=0.8, min_margin=0.0))
    assert answer.abstained and answer.text == ABSTAIN_TEXT and not answer.citations


def test_registry_names_the_valid_generators() -> None:
    assert create_generator("extractive", Settings()).name == "extractive"
    with pytest.raises(GeneratorError, match="extractive"):
        create_generator("gpt-17", Settings())


def test_counted_noun_and_coverage() -> None:
    assert read_question("郴州技师学院有多少名教师？").counted_noun == "教师"
    assert read_question("郴州评选了多少名“郴州技术能手”？").counted_noun == "郴州技术能手"
    assert read_question("北京的人口是多少？").counted_noun == ""
    groups = (("凤凰",), ("追回", "修复"), ("工资", "薪水"))
    assert keyword_coverage(groups, FENGHUANG) == pytest.approx(2 / 3)
    assert keyword_coverage((), FENGHUANG) == 0.0


def test_anchors_must_be_in_the_evidence() -> None:
    def req_info(question: str):  # type: ignore[no-untyped-def]
        return _request(question, [(FENGHUANG, 0.9)]).info

    assert anchors_present(req_info("凤凰县办理了多少起拖欠农民工工资案件？"), FENGHUANG)
    assert not anchors_present(req_info("北京的人口是多少？"), FENGHUANG)
    assert not anchors_present(req_info("株洲市 2025 年的 GDP 是多少？"), FENGHUANG)


def test_unknown_names_and_flat_relevance_abstain() -> None:
    thresholds = Thresholds(min_sentence=0.5, min_margin=0.05)
    base = _request("凤凰县为多少名农民工追回了拖欠工资？", [(FENGHUANG, 0.93)])
    assert not _answer(replace(base, background=0.80), thresholds).abstained
    assert _answer(replace(base, background=0.89), thresholds).abstained
    unknown = _answer(replace(base, background=0.80, unknown_names=("Huawei",)), thresholds)
    assert unknown.abstained and "Huawei" in unknown.abstain_reason
    assert "stands out" in _answer(replace(base, background=0.89), thresholds).abstain_reason


ZHUZHOU = "截至 12 月 2 日，今年市区空气质量优良天数为 302 天，优良率为 89.6%。"


def test_the_supporting_passage_must_name_what_the_question_names() -> None:
    thresholds = Thresholds(min_sentence=0.5, min_margin=0.0)
    zhuzhou = Chunk("z:0", "z", "制造名城澎湃“绿动力”——解读“株洲样本”", ZHUZHOU, 0, len(ZHUZHOU))
    request = GenerationRequest(
        read_question("长沙市今年空气质量优良天数是多少？"),
        (Passage(zhuzhou, 0.9),),
        (ScoredSentence(0, ZHUZHOU, 0, len(ZHUZHOU), 0.95),),
        names=("长沙市",),
    )
    reason = choose(request, thresholds)
    assert reason == "the passages that would answer never name 长沙市"
    # The same figures answer for the place the passage (by its title) is about.
    asked = replace(request, info=read_question("株洲今年空气质量优良天数是多少？"), names=("株洲",))
    choice = choose(asked, thresholds)
    assert not isinstance(choice, str) and choice.answer == "302 天"
    # A place suffix and the words of an organisation's name are matched too.
    county = replace(request, info=read_question("凤凰县纪委办理了多少起拖欠农民工工资案件？"), names=("凤凰县纪委",))
    fenghuang = Chunk("f:0", "f", "凤凰纪委为农民工解“薪”愁", FENGHUANG, 0, len(FENGHUANG))
    county = replace(
        county,
        passages=(Passage(fenghuang, 0.9),),
        sentences=(ScoredSentence(0, FENGHUANG, 0, len(FENGHUANG), 0.95),),
    )
    chosen = choose(county, thresholds)
    assert not isinstance(chosen, str) and chosen.answer == "32 起"


def test_a_count_of_days_needs_a_figure_in_days() -> None:
    assert read_question("今年空气质量优良天数是多少？").units == ("天",)
    assert "人" in read_question("参会人数是多少？").units
    request = _request("今年空气质量优良天数是多少？", [("今年共有 8 名志愿者参加了蓝天保卫战。", 0.95)])
    assert choose(request, Thresholds(min_sentence=0.5, min_margin=0.0)) == "no good sentence gives a figure in 天"


@pytest.mark.parametrize(
    ("question", "sentence", "span"),
    [
        # a figure keeps its measure word, scale and currency
        ("那个湖里放养了多少只天鹅？", "去年秋天，湖里放养了42只天鹅，数量创新高。", "42只"),
        ("该市一季度社会融资增量是多少？", "该市一季度社会融资增量为1.25万亿元，同比多增800亿元。", "1.25万亿元"),
        ("该行发行了多少熊猫债？", "该行发行了35亿元人民币的熊猫债。", "35亿元人民币"),
        # digits of a date, or given by the question, are not the answer
        ("2023年3月该店的客流量是多少？", "2023年3月，该店客流量达到8.6万人次。", "8.6万人次"),
        ("编号为 K207 的仓库收到了多少台设备？", "编号为K207的仓库今年共收到设备1380台。", "1380台"),
        # the figure the question's words are said of
        ("贷款利率下调至多少？", "多家银行将贷款利率从4.1%下调至3.85%。", "3.85%"),
        ("该省新增了多少例确诊病例？", "该省新增死亡病例12例，新增确诊病例356例。", "356例"),
        ("景区的门票价格是多少？", "景区门票原价120元，活动期间门票价格为80元。", "80元"),
        ("全省最大降雨量达到多少？", "湖南省气象台发布暴雨预警，全省最大降雨量达到120毫米。", "120毫米"),
    ],
)
def test_number_spans_are_whole_figures_said_of_what_is_asked(question: str, sentence: str, span: str) -> None:
    assert number_spans(read_question(question), sentence)[:1] == [span]


@pytest.mark.parametrize(
    ("question", "sentence", "span"),
    [
        ("那次访问是什么时间？", "该团于2023年5月8日至12日访问了三座城市。", "2023年5月8日至12日"),
        ("工程预计何时完工？", "2022年3月1日，指挥部表示，工程预计于2024年底完工。", "2024年底"),
        # the date the question gives comes after the one it asks for
        ("2021年5月10日起的限购到什么时候结束？", "自2021年5月10日起至2021年8月31日实行限购。", "2021年8月31日"),
        ("航班几点到达？", "航班于当晚21:05安全到达。", "21:05"),
        # 何时 asks for a day: a bare year only when the question asks for the year
        (
            "纳德拉何时接任董事长？",
            "2021年6月17日，微软宣布纳德拉接任董事长，纳德拉自2014年起担任CEO。",
            "2021年6月17日",
        ),
        ("纳德拉哪一年起担任CEO？", "2021年6月17日，微软宣布纳德拉接任董事长，纳德拉自2014年起担任CEO。", "2014年"),
    ],
)
def test_date_spans_are_whole_dates_said_of_what_is_asked(question: str, sentence: str, span: str) -> None:
    assert date_spans(read_question(question), sentence)[:1] == [span]


@pytest.mark.parametrize(
    ("question", "sentence", "span"),
    [
        ("当天上证指数是多少？", "当天上证指数下跌0.8%，报3050.12点。", "3050.12点"),
        ("出口占比提高了多少个百分点？", "出口占比为31.5%，提高了2.3个百分点。", "2.3个百分点"),
        ("两地航班每周有多少班？", "恢复后两地航班每周42班。", "每周42班"),
        ("新机型的目标销量是多少？", "新机型的目标销量至少500万台。", "至少500万台"),
    ],
)
def test_number_spans_keep_rates_bounds_and_what_an_index_stands_at(question: str, sentence: str, span: str) -> None:
    assert number_spans(read_question(question), sentence)[:1] == [span]


def test_a_date_without_its_year_takes_the_year_its_passage_gives() -> None:
    from rag.answer.evidence import completed_year

    passage = "2023年9月27日，证监会表示，自8月27日起优化监管安排。"
    assert completed_year("8月27日", passage, passage, None) == "2023年8月27日"
    assert (
        completed_year("6月10日至6月24日", "6月10日至6月24日，检查进行。", "2023年海淀区报道。", None)
        == "2023年6月10日至6月24日"
    )
    # the year the question asks about, when the passage gives several
    both = "2022年和2023年的9月22日都公布了成绩。"
    assert completed_year("9月22日", both, both, (2023, None, None)) == "2023年9月22日"
    assert completed_year("2024年7月3日", "x", "2023年", None) == "2024年7月3日"  # has its year
    assert completed_year("9月22日", "无年份。", "无年份。", (2023, None, None)) == "9月22日"  # none to add


@pytest.mark.parametrize(
    ("question", "sentence", "span"),
    [
        # English documents: the day of a date is no figure, and English dates answer "when".
        ("How long is the Riverside Bridge?", "It opened on 30 June 2024 and is 1,280 metres long.", "1,280"),
        ("How many galleries does the museum have?", "It reopened on 2 June with 14 new galleries.", "14"),
        ("When did the Riverside Bridge open?", "The bridge opened to traffic on 30 June 2024.", "30 June 2024"),
        ("When will the third line be added?", "The authority plans to add a third line in 2026.", "2026"),
        ("When did the museum reopen?", "The museum reopened on 2 June after two years.", "2 June"),
    ],
)
def test_spans_of_english_sentences(question: str, sentence: str, span: str) -> None:
    assert answer_span(read_question(question), sentence) == span
