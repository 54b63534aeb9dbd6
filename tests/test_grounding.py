"""The grounding contract: drafts are released only as verified units (rag.answer.grounding)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag.answer.analysis import read_question
from rag.answer.grounding import Verifier, cited_ranks, fix_scales, split_units, ungrounded_terms
from rag.answer.stream import verified
from rag.lang import ABSTAIN_TEXT
from rag.types import Choice, Chunk, GenerationRequest, Passage, ScoredSentence

FENGHUANG = "今年来，该县共办理拖欠农民工工资案件 32 起，为 386 名农民工追回拖欠工资 500 余万元。"
ZHUZHOU = "去年，株洲市空气质量优良天数达到 326 天。"


def _request(question: str, names: tuple[str, ...] = ()) -> GenerationRequest:
    texts = [("株洲", "制造名城澎湃“绿动力”", ZHUZHOU), ("凤凰", "凤凰纪委为农民工解“薪”愁", FENGHUANG)]
    passages = tuple(
        Passage(Chunk(f"{doc}#0", doc, title, text, 100 * n, 100 * n + len(text)), 0.86 - 0.02 * n)
        for n, (doc, title, text) in enumerate(texts)
    )
    sentences = tuple(
        ScoredSentence(n, text, 100 * n, 100 * n + len(text), 0.85 - 0.02 * n) for n, (_, _, text) in enumerate(texts)
    )
    evidence = Choice(sentences[1], "386 名", 0.9)
    return GenerationRequest(
        read_question(question), passages, sentences, background=0.7, names=names, evidence=evidence
    )


def _streamed(request: GenerationRequest, pieces: list[str], shown: int | None = None) -> tuple[list[str], Verifier]:
    verifier = Verifier(request, shown)
    out: list[str] = []
    for piece in pieces:
        out.extend(verifier.feed(piece))
    out.extend(verifier.end())
    return out, verifier


def test_units_end_at_sentence_ends_with_their_markers() -> None:
    assert split_units("第一句[1]。第二", final=False) == (["第一句[1]。"], "第二")
    # A marker may follow the full stop: wait until it is clear none does.
    assert split_units("386 workers. ", final=False) == ([], "386 workers. ")
    assert split_units("386 workers. [", final=False) == ([], "386 workers. [")
    assert split_units("386 workers. [2] And", final=False) == (["386 workers. [2]"], " And")
    # 9.4 is a number, not a sentence end.
    assert split_units("It is 9.4 million", final=False) == ([], "It is 9.4 million")
    assert split_units("last words", final=True) == (["last words"], "")


def test_markers_are_renumbered_to_the_citations_as_they_stream() -> None:
    request = _request("凤凰县为多少名农民工追回了拖欠工资？")
    pieces = ["凤凰县为", "386", "名农民工追回了工资[2]。", "株洲优良天数为 326 天[1]。"]
    out, verifier = _streamed(request, pieces)
    answer = verifier.answer()
    assert "".join(out) == answer.text == "凤凰县为386名农民工追回了工资[1]。株洲优良天数为 326 天[2]。"
    assert [c.doc_id for c in answer.citations] == ["凤凰", "株洲"]
    # The first unit was released before the second arrived, with its final marker.
    assert out[0] == "凤凰县为386名农民工追回了工资[1]。"


def test_a_wrong_marker_gives_way_to_the_passage_holding_the_figures() -> None:
    request = _request("How many workers did Fenghuang recover wages for?")
    answer = verified(request, ["Fenghuang recovered wages for 386 workers [1]."])
    assert answer.text == "Fenghuang recovered wages for 386 workers [1]."
    assert [c.doc_id for c in answer.citations] == ["凤凰"]
    # Out-of-range markers are dropped, and a figure without a marker gets one.
    assert verified(request, ["326 天 [7]"]).text == "326 天 [1]"
    assert verified(request, ["386 名"]).citations[0].doc_id == "凤凰"


def test_invented_figures_are_withheld_and_never_released() -> None:
    request = _request("What is the population of Changsha?")
    out, verifier = _streamed(request, ["The population of Changsha is ", "9.4 million [1]."])
    answer = verifier.answer()
    assert out == [ABSTAIN_TEXT] and answer.text == ABSTAIN_TEXT and answer.abstained
    assert "none of the passages" in answer.abstain_reason and "9.4" not in answer.abstain_reason
    assert not answer.citations
    # Figures only count when they are in the passages the model was shown.
    assert verified(request, ["386 名 [2]"], shown=1).abstained


def test_the_publication_day_a_citation_shows_grounds_a_date() -> None:
    request = _request("凤凰县的报道是哪天发布的？")
    assert verified(request, ["2024年3月8日 [2]"]).abstained  # no passage says so
    dated = replace(request.passages[1], chunk=replace(request.passages[1].chunk, published="2024-03-08"))
    request = replace(request, passages=(request.passages[0], dated))
    answer = verified(request, ["2024年3月8日 [2]"])
    assert not answer.abstained and answer.citations[0].published == "2024-03-08"
    assert verified(request, ["2024年3月9日 [2]"]).abstained


def test_a_later_invented_sentence_is_cut_and_the_model_stopped() -> None:
    request = _request("凤凰县为多少名农民工追回了拖欠工资？")
    verifier = Verifier(request)
    released = verifier.feed("为 386 名农民工追回工资[2]。另有 999 人")
    assert released == ["为 386 名农民工追回工资[1]。"] and not verifier.stopped
    assert verifier.feed("受益[2]。还有") == [] and verifier.stopped
    answer = verifier.answer()
    assert answer.text == "为 386 名农民工追回工资[1]。" and not answer.abstained
    assert "withheld" in answer.warnings[0] and "999" not in answer.text + answer.warnings[0]


@pytest.mark.parametrize(
    "draft",
    [
        ["NOT_", "FOUND"],
        ["According to the passages, ", "NOT_FOUND"],
        ["The passages do not mention the population of Changsha."],
        ["文中未提及长沙的人口。"],
        ["", " "],
    ],
)
def test_drafts_that_find_nothing_abstain(draft: list[str]) -> None:
    out, verifier = _streamed(_request("长沙的人口是多少？"), draft)
    assert out == [ABSTAIN_TEXT] and verifier.answer().abstained


def test_figures_must_come_from_a_passage_that_names_the_place_asked_about() -> None:
    request = _request("凤凰县去年空气质量优良天数是多少？", names=("凤凰县",))
    answer = verified(request, ["凤凰县去年优良天数为 326 天[1]。"])
    assert answer.abstained and "do not name 凤凰县" in answer.abstain_reason
    # Citations only go to passages that name it.
    named = verified(_request("凤凰县追回多少工资？", names=("凤凰县",)), ["500 余万元[1]"])
    assert [c.doc_id for c in named.citations] == ["凤凰"]


def test_an_answer_without_figures_or_markers_cites_the_gates_evidence() -> None:
    request = _request("凤凰纪委为谁解薪愁？")
    out, verifier = _streamed(request, ["为农民工。"])
    answer = verifier.answer()
    assert "".join(out) == answer.text == "为农民工[1]。" and answer.citations[0].doc_id == "凤凰"
    assert answer.evidence == FENGHUANG


def test_citation_points_at_the_evidence_sentence() -> None:
    request = _request("凤凰县为多少名农民工追回了拖欠工资？")
    citation = verified(request, ["386 名 [2]"]).citations[0]
    assert (citation.evidence_start, citation.evidence_end) == (100, 100 + len(FENGHUANG))


def test_grounding_terms() -> None:
    assert cited_ranks("答案 [2]，另见 [1] 和 [2]、[9]", 2) == [1, 0]
    assert ungrounded_terms("Fenghuang recovered wages for 386 workers [2].", FENGHUANG) == []
    assert ungrounded_terms("It recovered 1,200 yuan [2].", FENGHUANG) == ["1200"]
    assert ungrounded_terms("It recovered over 5 million yuan [2].", "PPP 项目 500 余万元") == []
    assert ungrounded_terms("该项目属于 PPP 模式 [1]", "PPP 项目") == []
    assert ungrounded_terms("华为公司的 GDP 增长 [1]", "PPP 项目") == ["GDP"]
    assert ungrounded_terms("The Party secretary of Zhuzhou is 曹慧泉 [1].", "株洲市委书记曹慧泉") == []


@pytest.mark.parametrize(
    ("answer", "passage", "expected"),
    [
        ("33.17 million yuan [1]", "累计支付工资 33.17 万元。", "331,700 yuan [1]"),
        ("2.5 billion yuan", "总投资 2.5 亿元", "250 million yuan"),
        ("over 5 million yuan", "追回拖欠工资 500 余万元", "over 5 million yuan"),
        ("3 million people", "全市人口 3 百万", "3 million people"),
        ("3 billion", "经济规模 3 万亿元", "3 trillion"),
        ("1,500 million yuan", "共投入 1500 万元", "15 million yuan"),
        # Right already: 500 万 is 5 million, whatever else the passage counts in 万.
        ("5 million yuan", "帮助 5 万人，投入 500 万元", "5 million yuan"),
    ],
)
def test_english_scale_words_follow_the_chinese_units(answer: str, passage: str, expected: str) -> None:
    assert fix_scales(answer, passage) == expected


def test_a_misread_wan_is_corrected_before_it_is_released() -> None:
    request = _request("How much did the company pay the workers?")
    paid = "某公司已为 57 名农民工，累计支付工资 33.17 万元。"
    chunk = replace(request.passages[1].chunk, text=paid, end=request.passages[1].chunk.start + len(paid))
    sentence = replace(request.sentences[1], text=paid, end=request.sentences[1].start + len(paid))
    request = replace(
        request,
        passages=(request.passages[0], replace(request.passages[1], chunk=chunk)),
        sentences=(request.sentences[0], sentence),
        evidence=Choice(sentence, "33.17 万元", 0.9),
    )
    out, verifier = _streamed(request, ["The company paid 33.17 million ", "yuan [2]."])
    answer = verifier.answer()
    assert "".join(out) == answer.text == "The company paid 331,700 yuan [1]."
    assert answer.evidence == paid
