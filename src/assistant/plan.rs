//! A personal plan: what *this* person does next, built from the situation the conversation
//! knows, the FAQ entry that fits their stage (its case for their situation) and the
//! checklist engine (the filing or reimbursement materials, the channels of their region,
//! the warnings that apply). Never free text: every line comes from an entry or a checklist
//! text with its source.

use std::collections::BTreeMap;

use super::Assistant;
use crate::guidance::checklist::{self, Situation};
use crate::reply::{FaqRef, Reply, ReplyKind};
use crate::understanding::Direction;

/// The FAQ entry whose case leads a plan, by the person's direction and stage.
pub(super) fn leading_entry(
    slots: &BTreeMap<String, String>,
    direction: Direction,
) -> std::borrow::Cow<'static, str> {
    let get = |k: &str| slots.get(k).map(String::as_str);
    if direction == Direction::Inbound {
        // the entry for people from elsewhere in the region where they are treated
        // (`inbound-<region>`; the 张家港 one when the place of care is not known)
        return match get("care_place") {
            Some(region) => format!("inbound-{region}").into(),
            None => "inbound-zhangjiagang".into(),
        };
    }
    leading_outbound(slots, direction).into()
}

fn leading_outbound(slots: &BTreeMap<String, String>, direction: Direction) -> &'static str {
    let get = |k: &str| slots.get(k).map(String::as_str);
    if direction == Direction::Within {
        return match get("stage") {
            Some("discharged_self_paid") => "manual-where",
            _ => "filing-in-province",
        };
    }
    match (get("visit"), get("stage"), get("filed")) {
        (Some("emergency"), ..) => "emergency",
        (Some("maternity"), ..) => "maternity",
        (_, Some("discharged_self_paid"), Some("true")) => "manual-when",
        (_, Some("discharged_self_paid"), _) => "backfill-after-discharge",
        (_, Some("in_hospital"), Some("true")) => "pay-own-share",
        (_, Some("in_hospital"), _) => "backfill-in-hospital",
        (_, _, Some("true")) => "hospitals-which",
        // sent on by a hospital here: the referral is the filing to make
        _ if get("filing_type") == Some("referral") => "referral",
        _ => match (get("insured_region"), get("care_location")) {
            (Some("suzhou"), Some("shanghai")) => "filing-suzhou-shanghai",
            (_, Some("in_province")) => "filing-in-province",
            _ => "filing-needed",
        },
    }
}

/// The first part of a channel's text: its name ("“江苏医保云”APP或小程序").
fn channel_name(text: &str) -> &str {
    let end = text.find(['（', '：', '，']).unwrap_or(text.len());
    text[..end].trim()
}

impl Assistant {
    /// What a statement of facts calls for at once, before the person asks: the urgent part
    /// of their situation (in hospital without filing, paid themselves, an emergency) as the
    /// lead of the entry for it, and the one fact still missing for a plan.
    pub(super) fn next_step(&self, slots: &BTreeMap<String, String>) -> Option<String> {
        let get = |k: &str| slots.get(k).map(String::as_str);
        let urgent = matches!(get("stage"), Some("in_hospital" | "discharged_self_paid"))
            || matches!(get("visit"), Some("emergency" | "maternity"));
        let direction = Direction::of(slots);
        let mut text = String::new();
        if urgent && direction != Direction::Inbound {
            let entry = self.knowledge.faq(&leading_entry(slots, direction))?;
            let (lead, _) = super::answer::lead(entry, slots);
            text.push_str(&format!("要紧的是：{}", super::answer::without_yes(lead)));
        }
        let ask = match (
            get("insured_region"),
            slots.contains_key("care_location") || slots.contains_key("care_place"),
        ) {
            (None, _) => {
                Some("是在苏州还是张家港参保的（或者外地参保）？告诉我，我按参保地说具体怎么办。")
            }
            (Some(_), false) => {
                Some("在哪里看病（或者住在哪里）？告诉我，我按就医地说具体怎么办。")
            }
            _ => None,
        };
        match ask {
            Some(a) if urgent || slots.len() >= 2 => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(a);
            }
            _ => {}
        }
        (!text.is_empty()).then_some(text)
    }

    /// Whether the conversation knows enough for a plan: where the person is insured and
    /// where they are (or will be) treated.
    pub(super) fn plan_ready(&self, slots: &BTreeMap<String, String>) -> bool {
        matches!(
            Direction::of(slots),
            Direction::Outbound | Direction::Inbound | Direction::Within
        ) && slots.contains_key("insured_region")
    }

    /// Who and where, as the plan opens: "您母亲（张家港参保，在上海）".
    pub(super) fn who_where(&self, slots: &BTreeMap<String, String>) -> String {
        let who = match slots.get("patient").map(String::as_str) {
            Some("parent") => "您家老人",
            Some("spouse") => "您爱人",
            Some("child") => "您孩子",
            _ => "您",
        };
        let insured = match slots.get("insured_region").map(String::as_str) {
            Some("other") => format!(
                "在{}参保",
                slots.get("insured_place").map_or("外地", String::as_str)
            ),
            Some(r) => format!("{}参保", self.dialogs.slots.label("insured_region", r)),
            None => String::new(),
        };
        let place = slots
            .get("care_location")
            .map(|c| self.dialogs.slots.label("care_location", c))
            .or_else(|| {
                slots
                    .get("care_place")
                    .map(|p| self.dialogs.slots.label("insured_region", p))
            });
        match place {
            Some(p) if !insured.is_empty() => format!("{who}（{insured}，在{p}看病）"),
            Some(p) => format!("{who}（在{p}看病）"),
            None => format!("{who}（{insured}）"),
        }
    }

    /// The plan for the situation in `slots`, or `None` when too little is known.
    pub(super) fn plan(&self, slots: &BTreeMap<String, String>) -> Option<Reply> {
        if !self.plan_ready(slots) {
            return None;
        }
        let direction = Direction::of(slots);
        let entry = self.knowledge.faq(&leading_entry(slots, direction))?;
        let (lead, _) = super::answer::lead(entry, slots);
        let mut text = format!("{}：{lead}", self.who_where(slots));
        let mut sources: Vec<String> = entry.sources.iter().take(2).cloned().collect();
        if direction == Direction::Outbound {
            let (steps, more_sources) = self.plan_steps(slots);
            // a step that says what the lead already said is left out
            let steps: Vec<String> = steps
                .into_iter()
                .filter(|s| super::answer::overlap(s, lead) < 0.45)
                .collect();
            for (n, s) in steps.iter().enumerate() {
                text.push_str(&format!("\n{}. {s}", n + 1));
            }
            sources.extend(more_sources);
        }
        let estimable = matches!(
            slots.get("visit").map(String::as_str),
            Some("inpatient" | "outpatient") | None
        ) && direction == Direction::Outbound;
        if estimable {
            text.push_str("\n想知道大概能报多少，回复“帮我算能报多少”。");
        } else if direction == Direction::Inbound {
            text.push_str(&format!(
                "\n备案和报销按您参保地（{}）的规定办，具体请问参保地医保经办机构。",
                slots.get("insured_place").map_or("外地", String::as_str)
            ));
        }
        sources.dedup();
        text.push_str(&format!("\n\n来源：{}", self.cite_brief(&sources)));
        let mut reply = Reply::of(ReplyKind::Faq, text);
        reply.faq = Some(FaqRef {
            id: entry.id.clone(),
        });
        Some(reply)
    }

    /// The steps of an outbound plan from the checklist engine: how to file (channels of the
    /// region, materials) or what to bring for reimbursement, and the warnings that apply.
    fn plan_steps(&self, slots: &BTreeMap<String, String>) -> (Vec<String>, Vec<String>) {
        let mut situation = Situation::default();
        for (slot, value) in slots {
            let _ = situation.set_with_regions(slot, value, &[]);
        }
        // what the person has not said is taken as the usual case, and said so
        let stage = situation
            .stage
            .get_or_insert(checklist::Stage::BeforeCare)
            .to_owned();
        situation.visit.get_or_insert(checklist::Visit::Inpatient);
        situation.by_proxy.get_or_insert(false);
        // a plan is asked for before filing: unknown means not filed yet
        situation.filed.get_or_insert(false);
        let type_known = situation.filing_type.is_some();
        situation
            .filing_type
            .get_or_insert(checklist::FilingType::Temporary);
        let mut steps = Vec::new();
        let mut sources = Vec::new();
        let Ok(list) = checklist::checklist(&situation, &self.checklist_texts) else {
            return (steps, sources);
        };
        let item = |id: &str| list.items.iter().find(|i| i.id == id);
        if !list.filing.is_empty() {
            let channels: Vec<&str> = list
                .channels
                .iter()
                .filter_map(|c| {
                    self.checklist_texts
                        .channel(c)
                        .map(|t| channel_name(&t.text))
                })
                .take(3)
                .collect();
            let kind = if type_known {
                format!(
                    "（{}）",
                    self.dialogs.slots.label(
                        "filing_type",
                        situation.filing_type.map_or("", |t| t.as_str())
                    )
                )
            } else {
                String::new()
            };
            steps.push(format!("办备案{kind}：可用{}办理。", channels.join("、")));
            let proofs: Vec<&str> = list
                .filing
                .iter()
                .filter(|id| !matches!(id.as_str(), "identity" | "filing-form"))
                .filter_map(|id| item(id).map(|i| i.text.as_str()))
                .collect();
            let mut bring = vec!["身份证或社保卡（医保电子凭证也行）"];
            if type_known {
                bring.extend(proofs);
            }
            steps.push(format!("要准备：{}。", bring.join("；")));
            if let Some(i) = list.filing.iter().find_map(|id| item(id)) {
                sources.push(i.source.clone());
            }
        }
        if !list.manual.is_empty() {
            let docs: Vec<&str> = list
                .manual
                .iter()
                .filter_map(|id| item(id).map(|i| i.text.as_str()))
                .filter(|t| !t.starts_with("社会保障卡"))
                .collect();
            steps.push(format!(
                "报销要带：社保卡、{}，交到{}。",
                docs.join("、"),
                self.region_contact_short(slots)
            ));
            if let Some(i) = list.manual.iter().find_map(|id| item(id)) {
                sources.push(i.source.clone());
            }
        }
        let warning_order = [
            "emergency-direct",
            "maternity-pay-first",
            "backfill-before-discharge",
            "backfill-no-promise",
            "temporary-reduced-ratio",
        ];
        for w in warning_order {
            if list.warnings.iter().any(|x| x == w)
                && let Some(t) = self.checklist_texts.warning(w)
            {
                // the 80% rule only when the person is known to go temporarily
                if w == "temporary-reduced-ratio" && !type_known {
                    continue;
                }
                steps.push(t.text.clone());
                sources.push(t.source.clone());
                break;
            }
        }
        if stage == checklist::Stage::BeforeCare && list.filing.is_empty() {
            steps.push(
                "看病时出示社保卡或医保电子凭证，在联网医院直接结算，只付自己负担的部分。".into(),
            );
        }
        (steps, sources)
    }

    /// Where the insured region's agency is, in a few words.
    fn region_contact_short(&self, slots: &BTreeMap<String, String>) -> String {
        match slots
            .get("insured_region")
            .and_then(|r| self.checklist_texts.regions.get(r))
        {
            Some(r) => format!("{}医保经办机构", r.label),
            None => "参保地医保经办机构".to_string(),
        }
    }
}
