//! Whole conversations through the public interface, as transcripts: each turn is a user
//! message and what the reply must show. One helper (`converse`) drives them all.

use std::sync::OnceLock;

use yidi::Assistant;
use yidi::dialog::engine::SessionState;

fn assistant() -> &'static Assistant {
    static A: OnceLock<Assistant> = OnceLock::new();
    A.get_or_init(|| {
        Assistant::load(&yidi::default_knowledge_dir(), &yidi::default_dialogs_dir())
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

/// What a reply must show. `asking=SLOT`, `asking=-` (no question), `dialog=ID`,
/// `dialog=-`, `faq=ID`, `faq=-`, `checklist`, `estimate`, `has=TEXT`, `choice=VALUE`.
fn check(reply: &yidi::Reply, expect: &str, turn: usize, message: &str) {
    let json = serde_json::to_value(reply).unwrap();
    for e in expect.split_whitespace() {
        let (key, want) = e.split_once('=').unwrap_or((e, ""));
        let ok = match key {
            "asking" if want == "-" => reply.asking.is_none(),
            "asking" => reply.asking.as_deref() == Some(want),
            "dialog" if want == "-" => reply.dialog.is_none(),
            "dialog" => reply.dialog.as_deref() == Some(want),
            "faq" if want == "-" => reply.faq.is_none(),
            "faq" => reply.faq.as_ref().map(|f| f.id.as_str()) == Some(want),
            "checklist" => reply.checklist.is_some(),
            "estimate" => reply.estimate.is_some(),
            "has" => reply.text.contains(want),
            "choice" => reply.choices.iter().any(|c| c.value == want),
            other => panic!("unknown expectation {other}"),
        };
        assert!(
            ok,
            "turn {turn} ({message:?}): expected {e}, got\n{}",
            serde_json::to_string_pretty(&json).unwrap()
        );
    }
}

/// Runs the turns on one session and returns the final state.
fn converse(turns: &[(&str, &str)]) -> SessionState {
    let mut state = SessionState::new();
    for (i, (message, expect)) in turns.iter().enumerate() {
        let reply = assistant().handle(&mut state, message);
        check(&reply, expect, i + 1, message);
        // the state survives a round trip through its stored form
        let stored = serde_json::to_string(&state).unwrap();
        state = serde_json::from_str(&stored).unwrap();
    }
    state
}

#[test]
fn a_rich_first_message_fills_most_slots() {
    let state = converse(&[
        (
            "我是苏州的退休职工，搬去上海跟儿子住，住院花了五万，能报多少？",
            "dialog=estimate asking=hospital_level choice=3 has=估算",
        ),
        ("三级医院", "asking=filed"),
        ("办好了", "asking=self_pay"),
        ("不清楚", "asking=admissions_before choice=unknown"),
        (
            "不清楚",
            "estimate dialog=estimate asking=- has=估算 has=按今年第一次住院",
        ),
    ]);
    assert!(state.active.is_none());
    assert_eq!(
        state.slots.get("insured_region").map(String::as_str),
        Some("suzhou")
    );
    assert_eq!(
        state.slots.get("care_location").map(String::as_str),
        Some("shanghai")
    );
    assert_eq!(
        state.slots.get("filing_type").map(String::as_str),
        Some("long_term_resident")
    );
    assert_eq!(state.slots.get("total").map(String::as_str), Some("50000"));
}

#[test]
fn the_example_from_zhangjiagang_gets_an_estimate_or_a_clear_refusal() {
    let mut state = SessionState::new();
    let a = assistant();
    let mut reply = a.handle(
        &mut state,
        "我是张家港的退休职工，搬去上海跟儿子住，住院花了五万，能报多少？",
    );
    for answer in ["三级", "已经备案了", "0", "不清楚"] {
        if reply.asking.is_none() {
            break;
        }
        reply = a.handle(&mut state, answer);
    }
    assert!(reply.asking.is_none(), "{reply:?}");
    // Suzhou's city-level table, said in one plain sentence with the hotline that confirms
    assert!(reply.estimate.is_some(), "{}", reply.text);
    assert_eq!(reply.estimate.as_ref().unwrap()["policy"], "zhangjiagang");
    assert!(
        reply.text.contains("按苏州大市统一的医保待遇表估算") && reply.text.contains("0512-12333"),
        "{}",
        reply.text
    );
}

#[test]
fn earlier_care_this_year_is_asked_once_and_used() {
    // a second admission: the halved deductible and the cumulative bands
    let state = converse(&[
        (
            "我是苏州在职职工，异地长期居住，已经备案了，在三级医院住院花了5万，能报多少",
            "asking=self_pay",
        ),
        ("没有", "asking=admissions_before"),
        ("之前住过1次", "asking=cumulative_eligible_before"),
        (
            "3万",
            "estimate asking=- has=本次按年内第二次住院计起付线 has=400.00 has=30400.00",
        ),
    ]);
    // the total is not taken from the answer about earlier care
    assert_eq!(state.slots.get("total").map(String::as_str), Some("50000"));
    // outpatient: the yearly deductible takes the year's outpatient cost before
    converse(&[
        (
            "我是苏州退休职工，长期居住备案了，在二级医院看门诊花了3000，能报多少",
            "asking=self_pay",
        ),
        ("0", "asking=outpatient_eligible_before"),
        (
            "100",
            "estimate asking=- has=本次还需自付起付线 has=2295.00",
        ),
    ]);
}

#[test]
fn an_off_script_answer_is_asked_again_then_the_hotline_is_offered() {
    converse(&[
        (
            "帮我算算能报多少",
            "dialog=estimate asking=insured_region choice=suzhou",
        ),
        (
            "蓝色的",
            "asking=insured_region has=没能理解 choice=zhangjiagang",
        ),
        ("随便吧", "asking=insured_region"),
        ("不告诉你", "asking=- dialog=- has=0512-12333"),
        ("起付线是什么意思", "faq=deductible dialog=-"),
    ]);
}

#[test]
fn answers_are_accepted_as_value_label_or_free_text() {
    converse(&[
        ("/estimate", "asking=insured_region"),
        ("suzhou", "asking=scheme"),
        ("城乡居民医保", "asking=category"),
        (
            "我家孩子是大学生",
            "asking=visit choice=inpatient choice=outpatient",
        ),
        ("住院", "asking=hospital_level"),
    ]);
}

#[test]
fn going_back_and_restarting() {
    converse(&[
        ("备案材料清单", "dialog=filing asking=insured_region"),
        ("苏州", "asking=care_location"),
        ("北京", "asking=filing_type"),
        ("返回", "asking=care_location"),
        ("上一步", "asking=insured_region"),
        ("上一步", "asking=insured_region has=第一个问题"),
        ("张家港", "asking=care_location"),
        ("重新开始", "asking=insured_region has=从头开始"),
        ("退出", "asking=- dialog=- has=已退出"),
        ("返回", "has=没有进行中的问答"),
    ]);
}

#[test]
fn an_faq_question_inside_a_dialog_is_answered_and_the_dialog_resumes() {
    let state = converse(&[
        ("备案材料清单", "asking=insured_region"),
        ("苏州", "asking=care_location"),
        (
            "出差突然生病急诊没有备案能直接结算吗",
            "faq=emergency asking=care_location has=接着刚才的问题",
        ),
        ("上海", "asking=filing_type"),
    ]);
    assert_eq!(
        state.slots.get("care_location").map(String::as_str),
        Some("shanghai")
    );
}

#[test]
fn the_filing_dialog_ends_in_a_checklist() {
    converse(&[(
        "我妈是苏州退休的，要去北京长期居住，备案要准备什么材料清单",
        "dialog=filing",
    )]);
    let mut state = SessionState::new();
    let a = assistant();
    let mut reply = a.handle(
        &mut state,
        "帮我列备案材料清单，苏州参保，去北京跟女儿长住，还没去",
    );
    let answers = ["没有", "住院", "家人代办"];
    for answer in answers {
        if reply.asking.is_none() {
            break;
        }
        reply = a.handle(&mut state, answer);
    }
    assert!(reply.checklist.is_some(), "{}", reply.text);
    let list = reply.checklist.unwrap();
    let filing: Vec<&str> = list["filing"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        filing.contains(&"identity")
            && filing.contains(&"residence-proof")
            && filing.contains(&"proxy-identity"),
        "{list}"
    );
}

#[test]
fn the_card_failure_dialog_diagnoses_by_asking() {
    converse(&[
        ("社保卡在外地医院刷不了", "dialog=card_failure asking=filed"),
        ("办了", "asking=area_match"),
        ("一致", "asking=hospital_networked"),
        (
            "没开通",
            "asking=- dialog=card_failure has=还没有开通 has=来源",
        ),
    ]);
    converse(&[(
        "医院说结算不了，我没备案",
        "dialog=card_failure asking=- has=还没有办理异地就医备案",
    )]);
}

#[test]
fn bad_amounts_are_explained_and_asked_again() {
    converse(&[
        ("/estimate", "asking=insured_region"),
        ("苏州", "asking=scheme"),
        ("职工", "asking=employment"),
        ("在职", "asking=visit"),
        ("急诊", "asking=visit has=只能选择 has=住院"),
        ("住院", "asking=hospital_level"),
        ("二级", "asking=filing_type"),
        ("异地长期居住", "asking=filed"),
        ("是", "asking=total"),
        ("-500", "asking=total has=负数"),
        ("abc元", "asking=total has=金额"),
        // scientific notation was read as its exponent (30 元): now refused, asked again
        ("1e30元", "asking=total has=没看懂这个金额"),
        ("1E+30块", "asking=total has=没看懂这个金额"),
        ("10^6元", "asking=total has=没看懂这个金额"),
        ("12.345", "asking=total has=两位小数"),
        ("20000000", "asking=total has=一千万"),
        ("五万三千块二毛五", "asking=self_pay"),
    ]);
}

#[test]
fn an_amount_in_scientific_notation_in_a_first_message_is_not_taken_as_its_exponent() {
    let state = converse(&[(
        "我是苏州的退休职工，搬去上海跟儿子住，住院花了1e30元，能报多少？",
        "dialog=estimate",
    )]);
    assert_eq!(state.slots.get("total"), None, "{:?}", state.slots);
}

#[test]
fn control_words_and_empty_messages_outside_a_dialog() {
    converse(&[
        ("", "has=请输入 dialog=-"),
        ("退出", "dialog=-"),
        ("重新开始", "has=异地就医小助手"),
    ]);
}

#[test]
fn an_overlong_message_gets_a_friendly_reply() {
    let long = "我想问".repeat(1_000);
    converse(&[(long.as_str(), "has=太长 dialog=-")]);
}

#[test]
fn a_state_from_an_older_release_is_replaced_with_a_note() {
    let mut state: SessionState = serde_json::from_str(
        r#"{"version": 1, "slots": {}, "active": {"dialog": "removed_dialog", "step": "x", "history": [], "retries": 0}}"#,
    )
    .unwrap();
    let reply = assistant().handle(&mut state, "起付线是什么");
    assert!(reply.text.contains("重新开始"), "{}", reply.text);
    assert_eq!(
        reply.faq.as_ref().map(|f| f.id.as_str()),
        Some("deductible")
    );
    assert!(state.active.is_none());
}

#[test]
fn an_estimate_that_cannot_be_made_is_refused_before_more_questions() {
    // no source for Suzhou residents' outpatient care: refused with what is missing
    converse(&[
        ("帮我算算能报多少", "asking=insured_region"),
        ("苏州", "asking=scheme"),
        ("居民医保", "asking=category"),
        ("其他", "asking=visit"),
        (
            "门诊",
            "asking=- has=没法给出估算 has=城乡居民医保 has=门诊统筹的起付标准",
        ),
    ]);
    // employees' outpatient care is estimated (门诊共济)
    converse(&[
        ("帮我算算能报多少", "asking=insured_region"),
        ("张家港", "asking=scheme"),
        ("职工", "asking=employment"),
        ("退休", "asking=visit"),
        ("门诊", "asking=hospital_level"),
    ]);
}

#[test]
fn yes_no_answers_are_understood_in_everyday_forms() {
    for answer in ["已经办好了", "是的，办了", "办过了"] {
        converse(&[
            ("社保卡在外地刷不了", "asking=filed"),
            (answer, "asking=area_match"),
        ]);
    }
    for answer in ["还没有", "没呢", "还没办呢"] {
        converse(&[
            ("社保卡在外地刷不了", "asking=filed"),
            (answer, "asking=- has=还没有办理异地就医备案"),
        ]);
    }
}

#[test]
fn a_new_dialog_does_not_reuse_another_persons_situation() {
    let state = converse(&[
        (
            "帮我列备案材料清单，苏州参保，去上海长期居住",
            "dialog=filing",
        ),
        ("退出", "dialog=-"),
        (
            "我爸是张家港参保的，在北京临时探亲，帮我列备案材料清单",
            "dialog=filing",
        ),
    ]);
    assert_eq!(
        state.slots.get("insured_region").map(String::as_str),
        Some("zhangjiagang")
    );
    assert_eq!(
        state.slots.get("care_location").map(String::as_str),
        Some("other_province")
    );
    assert_eq!(
        state.slots.get("filing_type").map(String::as_str),
        Some("temporary")
    );
}

#[test]
fn a_question_mid_dialog_is_answered_even_when_it_names_an_option() {
    converse(&[
        ("备案材料清单", "asking=insured_region"),
        (
            "苏州医保在外地看病需要备案吗？",
            "asking=insured_region has=接着刚才的问题",
        ),
    ]);
}

#[test]
fn mentioning_chronic_conditions_adds_the_warning() {
    let mut state = SessionState::new();
    let a = assistant();
    let mut reply = a.handle(
        &mut state,
        "我有门诊慢特病，苏州参保，要去北京长期居住，还没去，帮我列备案材料清单",
    );
    for answer in ["没有", "门诊", "本人"] {
        if reply.asking.is_none() {
            break;
        }
        reply = a.handle(&mut state, answer);
    }
    let list = reply.checklist.unwrap_or_else(|| panic!("{}", reply.text));
    assert!(
        list["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "chronic-register"),
        "{list}"
    );
}
