//! The filing and reimbursement checklist (`../shared/spec/checklist.md`): a pure function of
//! the user's [`Situation`] and the texts of `knowledge/checklist.toml`.
//!
//! Three parts:
//! - **Texts.** [`load`] reads `knowledge/checklist.toml` in two stages (serde's raw shape with
//!   unknown fields denied, then [`ChecklistTexts`]); every item, warning and channel id the
//!   rules can emit must have a one-line `text` and a `source` citing a seed; errors name the
//!   file, the id and the field.
//! - **Situation.** The slots of checklist.md, each optional: [`Situation::from_json`] for the
//!   CLI and HTTP, [`Situation::set`] / [`Situation::get`] (string values, `"true"`/`"false"`
//!   for booleans) for the dialog engine, [`SLOTS`] for the allowed values. `insured_region`
//!   takes any well-formed region id; [`checklist`] checks it against the region files
//!   (`knowledge/regions/`, loaded by [`load`]). yidi's own extension: `mentions_chronic`
//!   (bool, default false), set when the user mentions 门诊慢特病 or 国谈药.
//! - **Rules.** [`checklist`] decides the ids; [`Checklist::items`] carries the texts of the
//!   filing and manual items, in that order. Warnings and channels are listed by id only (the
//!   JSON shape of cli.md stays exact); a renderer takes their texts from
//!   [`ChecklistTexts::warning`] and [`ChecklistTexts::channel`].
//!
//! # The rules, where checklist.md leaves room
//!
//! Slots are required lazily: a slot is an error only when a rule needs it. `stage`,
//! `filing_type` and `visit` are always needed (they decide the lists and the warnings);
//! `filed` as below; `by_proxy`, `insured_region` and `care_location` only when the filing list
//! is produced (`insured_region` also for `filing_type = temporary`, for the 80% warning).
//! Errors come in that order.
//!
//! `filed` may be absent when the situation settles it: `filing_type = none` means not filed
//! (and `filed = true` with it is a contradiction, an error on `filed`); `stage = before_care`
//! with no `filed` is "how do I file?", answered with the filing list; after a self-paid
//! discharge the filing was not in force for that stay (the `filing` dialog sets it to false
//! there too). Only `stage = in_hospital` needs it.
//!
//! **Filing list** ([`ItemId::is_filing`]): when not filed and `stage` is not
//! `discharged_self_paid`. After a self-paid discharge, not filed: the four long-term/referral
//! types get the filing items for a backfill, with the `backfill_text` of the proof items (no
//! 个人承诺书); `temporary` and `none` cannot backfill and get no filing items (002 相关事项3).
//! In both cases the `backfill-no-promise` warning says so.
//!
//! **Manual list** (cash paid first, then 零星报销 at the 参保地 agency):
//! - `stage = discharged_self_paid`: the care was paid in cash (004 第十八条; 002 常见问题).
//! - `visit = maternity`, for every region: 001 tells Suzhou's insured to pay maternity care
//!   first, and 004 第十八条（四） (province-wide) lists 异地生育 among the 零星报销 cases.
//! - Not otherwise: an unfiled patient before care or in hospital gets the filing (backfill)
//!   list, which lets the care be settled directly (002 常见问题); an unfiled emergency is
//!   settled directly (002 注意事项（1）); a filed patient settles directly (004 第十二条).
//!
//! **Warnings** follow the "when" column of checklist.md literally. `temporary-reduced-ratio`
//! applies to the regions whose file says `temporary_reduced_ratio = true`: the 80% rule is
//! stated by 001 for 苏州医保, and checklist.md reads "Suzhou" as the whole city, so both
//! `suzhou` and `zhangjiagang` say so (for 张家港 unverified, see
//! `../shared/research/policy-zhangjiagang.md` §3).
//!
//! **Channels** are listed in the order of checklist.md. With a filing list: `counter`,
//! `jiangsu-app` (001: 省内和跨省), `national-app` and `national-miniprogram` only when
//! `care_location` is outside Jiangsu (001 lists both as 跨省 channels), the region's own
//! `filing_channels` from its file (`wechat-suzhou` for `suzhou`, 001; `esscard-app` for
//! `zhangjiagang`, 000), `hospital` for `referral`
//! (004 第八条（三）). With a manual list: `counter` (000: 事后报销 at the agency). Region ids
//! from policies are taken to be in Jiangsu (care locations are relative to Jiangsu).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::FieldError;
use super::region::Regions;
pub use super::values::{CareLocation, Employment, FilingType, Scheme};
// below both the checklist and the region files, which name channels and carry texts
pub use super::values::{ChannelId, MAX_TEXT_CHARS, Text};
use super::values::{Keyword, slot_values};

/// The `insured_region` of people insured outside the regions we serve (with the place's
/// name in `insured_place`): recorded as such, never as one of ours.
pub const OTHER_REGION: &str = "other";

/// The file, in the knowledge folder, that holds the checklist texts.
pub const FILE: &str = "checklist.toml";

slot_values!(
    /// Where the user is in the course of care.
    Stage {
        BeforeCare = "before_care": "还没就医",
        InHospital = "in_hospital": "正在住院，还没出院结算",
        DischargedSelfPaid = "discharged_self_paid": "已出院并自费结算",
    }
);

slot_values!(
    /// The kind of care.
    Visit {
        Inpatient = "inpatient": "住院",
        Outpatient = "outpatient": "门诊",
        Emergency = "emergency": "急诊抢救",
        Maternity = "maternity": "生育（含产前检查）",
    }
);

slot_values!(
    /// The items of both lists, in the order of checklist.md (filing items first).
    ItemId {
        Identity = "identity": "有效身份证件、社会保障卡或医保电子凭证",
        FilingForm = "filing-form": "《异地就医登记备案表》",
        ResettlementProof = "resettlement-proof": "户口簿首页和常住人口登记卡，或个人承诺书",
        ResidenceProof = "residence-proof": "居住证明，或个人承诺书",
        WorkProof = "work-proof": "单位派出证明或异地工作劳动合同，或个人承诺书",
        ReferralProof = "referral-proof": "转诊/转院证明",
        ProxyIdentity = "proxy-identity": "代办人身份证",
        SocialSecurityCard = "social-security-card": "社会保障卡",
        Invoice = "invoice": "医院收费票据",
        InpatientCostList = "inpatient-cost-list": "住院费用清单",
        DiagnosisOrDischargeSummary = "diagnosis-or-discharge-summary": "诊断证明或出院小结",
        OutpatientCostList = "outpatient-cost-list": "门诊费用清单",
        PrescriptionOrRecord = "prescription-or-record": "门诊处方底方或门诊病历",
        DetailedCostList = "detailed-cost-list": "医药费明细清单",
        EmergencyDiagnosis = "emergency-diagnosis": "急诊诊断证明或急诊病历",
        MaternityInvoice = "maternity-invoice": "生育或产前检查医药费票据",
        DischargeSummary = "discharge-summary": "出院小结",
    }
);

slot_values!(
    /// The warnings, in the order of checklist.md.
    WarningId {
        MaternityPayFirst = "maternity-pay-first": "生育费用先垫付",
        BackfillBeforeDischarge = "backfill-before-discharge": "出院结算前补备案",
        BackfillNoPromise = "backfill-no-promise": "补备案不实行承诺制",
        TemporaryReducedRatio = "temporary-reduced-ratio": "临时外出按80%结付",
        KeepThermalCopies = "keep-thermal-copies": "热敏纸清单复印留档",
        ManualDeadline = "manual-deadline": "零星报销办结时限",
        ChronicRegister = "chronic-register": "门诊慢特病、国谈药尽快办手续",
        EmergencyDirect = "emergency-direct": "急诊抢救可直接结算",
    }
);

impl CareLocation {
    /// 江苏省内 (the national channels serve cross-province filings only).
    pub fn in_jiangsu(self) -> bool {
        self == CareLocation::InProvince
    }
}

impl FilingType {
    /// The proof item of this filing type, if it needs one.
    fn proof(self) -> Option<ItemId> {
        match self {
            FilingType::ResettledRetiree => Some(ItemId::ResettlementProof),
            FilingType::LongTermResident => Some(ItemId::ResidenceProof),
            FilingType::PostedWorker => Some(ItemId::WorkProof),
            FilingType::Referral => Some(ItemId::ReferralProof),
            FilingType::Temporary | FilingType::None => None,
        }
    }

    /// One of the four types that may be filed after a self-paid discharge (002 相关事项3).
    fn may_backfill(self) -> bool {
        self.proof().is_some()
    }
}

impl ItemId {
    /// An item of the filing list (else of the manual list).
    pub fn is_filing(self) -> bool {
        self <= ItemId::ProxyIdentity
    }

    /// Its proof may be replaced by a personal promise (个人承诺书), except when backfilling.
    fn has_promise_option(self) -> bool {
        matches!(
            self,
            ItemId::ResettlementProof | ItemId::ResidenceProof | ItemId::WorkProof
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Texts
// ---------------------------------------------------------------------------------------------

/// The validated texts of `knowledge/checklist.toml`: one for every id the rules can emit.
#[derive(Debug, Clone)]
pub struct ChecklistTexts {
    /// Indexed like [`ItemId::ALL`].
    items: Vec<Text>,
    /// The text without the promise option, for the items that have one (same index).
    backfill: Vec<Option<String>>,
    /// Indexed like [`WarningId::ALL`].
    warnings: Vec<Text>,
    /// Indexed like [`ChannelId::ALL`].
    channels: Vec<Text>,
    /// The regions (`knowledge/regions/`): which region-specific rules and channels apply.
    /// Empty when only `checklist.toml` was parsed: then any region id is accepted and no
    /// region-specific rule applies.
    pub regions: Regions,
}

impl ChecklistTexts {
    /// The text of an item id (for backfills, [`Checklist::items`] has the promise-free text).
    pub fn item(&self, id: &str) -> Option<&Text> {
        ItemId::parse(id).map(|i| &self.items[i as usize])
    }

    pub fn warning(&self, id: &str) -> Option<&Text> {
        WarningId::parse(id).map(|w| &self.warnings[w as usize])
    }

    /// The text of a channel: one of checklist.md's, or one a region file defines.
    pub fn channel(&self, id: &str) -> Option<&Text> {
        ChannelId::parse(id)
            .map(|c| &self.channels[c as usize])
            .or_else(|| self.regions.channel(id))
    }

    fn item_text(&self, id: ItemId, backfill: bool) -> Item {
        let text = &self.items[id as usize];
        let shown = match &self.backfill[id as usize] {
            Some(b) if backfill => b,
            _ => &text.text,
        };
        Item {
            id: id.as_str().to_string(),
            text: shown.clone(),
            source: text.source.clone(),
        }
    }
}

/// The raw shape of `checklist.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    items: BTreeMap<String, RawText>,
    #[serde(default)]
    warnings: BTreeMap<String, RawText>,
    #[serde(default)]
    channels: BTreeMap<String, RawText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    text: String,
    source: String,
    backfill_text: Option<String>,
}

/// Loads and validates `checklist.toml` and the region files (`regions/*.toml`) from the
/// knowledge folder: the texts, or every error (each like
/// `"checklist.toml: items.identity: field `text` must not be empty"`).
pub fn load(knowledge_dir: &Path) -> Result<ChecklistTexts, Vec<String>> {
    let path = knowledge_dir.join(FILE);
    let source =
        std::fs::read_to_string(&path).map_err(|e| vec![format!("{FILE}: cannot read: {e}")])?;
    let texts = parse(&source);
    let regions = Regions::load_dir(knowledge_dir);
    match (texts, regions) {
        (Ok(mut texts), Ok(regions)) => {
            texts.regions = regions;
            Ok(texts)
        }
        (Err(mut a), Err(b)) => {
            a.extend(b);
            Err(a)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Validates the text of a `checklist.toml`.
pub fn parse(source: &str) -> Result<ChecklistTexts, Vec<String>> {
    let raw: RawFile = toml::from_str(source).map_err(|e| vec![format!("{FILE}: {e}")])?;
    let mut errors = Vec::new();
    let mut items = Vec::new();
    let mut backfill = Vec::new();
    for (id, text, backfill_text) in section("items", raw.items, ItemId::ALL, &mut errors) {
        let at = format!("items.{}", id.as_str());
        let backfill_text = match (id.has_promise_option(), backfill_text) {
            (true, Some(b)) => check_text(&at, "backfill_text", &b, &mut errors).then_some(b),
            (true, None) => {
                errors.push(format!(
                    "{FILE}: {at}: field `backfill_text` is required (the material without the \
                     个人承诺书 option, shown for a backfill after a self-paid discharge)"
                ));
                None
            }
            (false, Some(_)) => {
                errors.push(format!(
                    "{FILE}: {at}: field `backfill_text` is only for the items with a promise \
                     option (resettlement-proof, residence-proof, work-proof)"
                ));
                None
            }
            (false, None) => None,
        };
        items.push(text);
        backfill.push(backfill_text);
    }
    let warnings = texts_only("warnings", raw.warnings, WarningId::ALL, &mut errors);
    let channels = texts_only("channels", raw.channels, ChannelId::ALL, &mut errors);
    if errors.is_empty() {
        Ok(ChecklistTexts {
            items,
            backfill,
            warnings,
            channels,
            regions: Regions::default(),
        })
    } else {
        Err(errors)
    }
}

/// Validates one section: unknown ids, missing ids, `text` and `source`. Returns the entries of
/// the known ids in `all` order (a `Text` may be invalid when an error was pushed).
fn section<Id: Keyword>(
    name: &str,
    mut raw: BTreeMap<String, RawText>,
    all: &[Id],
    errors: &mut Vec<String>,
) -> Vec<(Id, Text, Option<String>)> {
    let known: Vec<&str> = all.iter().map(|id| id.name()).collect();
    for key in raw.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(format!(
            "{FILE}: {name}.{key}: unknown id (the rules emit only: {})",
            known.join(", ")
        ));
    }
    let mut out = Vec::new();
    for &id in all {
        let at = format!("{name}.{}", id.name());
        let Some(r) = raw.remove(id.name()) else {
            errors.push(format!(
                "{FILE}: {at}: missing; every id needs `text` and `source` ({})",
                id.gist()
            ));
            continue;
        };
        check_text(&at, "text", &r.text, errors);
        if r.source.trim().is_empty() {
            errors.push(format!("{FILE}: {at}: field `source` must not be empty"));
        } else if !starts_with_seed_id(&r.source) {
            errors.push(format!(
                "{FILE}: {at}: field `source` must start with a seed id and a space, like \
                 \"004 第十九条\" (got {:?})",
                r.source
            ));
        }
        out.push((
            id,
            Text {
                text: r.text,
                source: r.source,
            },
            r.backfill_text,
        ));
    }
    out
}

/// Validates a section whose entries take no `backfill_text` and returns its texts.
fn texts_only<Id: Keyword>(
    name: &str,
    raw: BTreeMap<String, RawText>,
    all: &[Id],
    errors: &mut Vec<String>,
) -> Vec<Text> {
    let entries = section(name, raw, all, errors);
    let mut texts = Vec::new();
    for (id, text, backfill) in entries {
        if backfill.is_some() {
            errors.push(format!(
                "{FILE}: {name}.{}: field `backfill_text` is only for items",
                id.name()
            ));
        }
        texts.push(text);
    }
    texts
}

/// Pushes an error unless `value` is a non-empty single line of at most [`MAX_TEXT_CHARS`].
fn check_text(at: &str, field: &str, value: &str, errors: &mut Vec<String>) -> bool {
    let problem = if value.trim().is_empty() {
        "must not be empty".to_string()
    } else if value.contains('\n') {
        "must be one line".to_string()
    } else if value.chars().count() > MAX_TEXT_CHARS {
        format!("must be at most {MAX_TEXT_CHARS} characters (one short line)")
    } else {
        return true;
    };
    errors.push(format!("{FILE}: {at}: field `{field}` {problem}"));
    false
}

/// `"004 第十九条"`: three digits, then a space and something.
fn starts_with_seed_id(source: &str) -> bool {
    let b = source.as_bytes();
    b.len() > 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' '
}

// ---------------------------------------------------------------------------------------------
// Situation
// ---------------------------------------------------------------------------------------------

/// The region ids that are always accepted for `insured_region`.
pub const REGIONS: &[&str] = &["suzhou", "zhangjiagang"];

const BOOLS: &[&str] = &["true", "false"];

/// Every slot with its allowed values (`insured_region`: the built-in regions; the
/// `*_with_regions` functions accept more). `mentions_chronic` is yidi's own extension.
pub const SLOTS: &[(&str, &[&str])] = &[
    ("insured_region", REGIONS),
    ("scheme", Scheme::VALUES),
    ("employment", Employment::VALUES),
    ("care_location", CareLocation::VALUES),
    ("filing_type", FilingType::VALUES),
    ("filed", BOOLS),
    ("stage", Stage::VALUES),
    ("visit", Visit::VALUES),
    ("by_proxy", BOOLS),
    ("mentions_chronic", BOOLS),
];

/// The user's situation: the slots of checklist.md, each absent until known.
// Not serde: [`Situation::from_json`] reads it (strings for the booleans too, errors naming
// the field); its schema (the API's document) describes that JSON form.
#[derive(Debug, Clone, Default, PartialEq, Eq, utoipa::ToSchema)]
#[schema(
    description = "the slots of spec/checklist.md; a slot a rule needs and the input lacks is a 422 naming it"
)]
pub struct Situation {
    /// 参保地: suzhou, zhangjiagang, or a region id of knowledge/policies/; an unknown region
    /// is a 422 naming insured_region.
    #[schema(min_length = 1)]
    pub insured_region: Option<String>,
    /// 职工医保 / 城乡居民医保.
    pub scheme: Option<Scheme>,
    /// 在职 / 退休.
    pub employment: Option<Employment>,
    /// 就医地.
    pub care_location: Option<CareLocation>,
    /// 备案类型.
    pub filing_type: Option<FilingType>,
    /// 备案是否已办妥.
    pub filed: Option<bool>,
    /// 就医阶段.
    pub stage: Option<Stage>,
    /// 就医类型.
    pub visit: Option<Visit>,
    /// 由他人代办.
    pub by_proxy: Option<bool>,
    /// yidi's extension: the user mentioned 门诊慢特病 or 国谈药 (absent means no).
    pub mentions_chronic: Option<bool>,
}

impl Situation {
    /// Reads a situation object, e.g. `{"insured_region": "suzhou", "stage": "before_care",
    /// "filed": false}`. Booleans may be JSON booleans or the strings `"true"`/`"false"`;
    /// `null` counts as absent. Unknown fields, unknown values and wrong types are errors naming
    /// the field.
    pub fn from_json(v: &Value) -> Result<Situation, FieldError> {
        Situation::from_json_with_regions(v, &[])
    }

    /// [`Situation::from_json`], also accepting the region ids in `extra_regions`.
    pub fn from_json_with_regions(
        v: &Value,
        extra_regions: &[String],
    ) -> Result<Situation, FieldError> {
        let Value::Object(map) = v else {
            return Err(FieldError::new(
                "input",
                "请提供一个 JSON 对象，例如 {\"insured_region\": \"suzhou\", \"care_location\": \
                 \"other_province\", \"filing_type\": \"long_term_resident\", \"filed\": false, \
                 \"stage\": \"before_care\", \"visit\": \"inpatient\", \"by_proxy\": false}。",
            ));
        };
        if let Some(key) = map.keys().find(|k| slot_values(k).is_none()) {
            return Err(unknown_slot(key));
        }
        let mut situation = Situation::default();
        for &(slot, values) in SLOTS {
            let value = match map.get(slot) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) if values == BOOLS => b.to_string(),
                Some(_) => {
                    return Err(FieldError::new(
                        slot,
                        format!(
                            "{}的格式不对，请填写{}。",
                            title(slot),
                            hint(slot, extra_regions)
                        ),
                    ));
                }
            };
            situation.set_with_regions(slot, &value, extra_regions)?;
        }
        Ok(situation)
    }

    /// Sets a slot from its string value (as in [`SLOTS`]); an unknown slot or value is an error
    /// naming the slot, and leaves the situation as it was.
    pub fn set(&mut self, slot: &str, value: &str) -> Result<(), FieldError> {
        self.set_with_regions(slot, value, &[])
    }

    /// [`Situation::set`], also accepting the region ids in `extra_regions`.
    pub fn set_with_regions(
        &mut self,
        slot: &str,
        value: &str,
        extra_regions: &[String],
    ) -> Result<(), FieldError> {
        let value = value.trim();
        let bad = || {
            FieldError::new(
                slot,
                format!(
                    "“{value}”不是有效的{}，请填写以下之一：{}。",
                    title(slot),
                    hint(slot, extra_regions)
                ),
            )
        };
        let flag = || match value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad()),
        };
        match slot {
            "insured_region" => {
                // region ids are data (knowledge/regions/): any well-formed id is taken here,
                // and [`checklist`] checks it against the loaded regions
                let well_formed = !value.is_empty()
                    && value.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    });
                if !(REGIONS.contains(&value)
                    || extra_regions.iter().any(|r| r == value)
                    || well_formed)
                {
                    return Err(bad());
                }
                self.insured_region = Some(value.to_string());
            }
            "scheme" => self.scheme = Some(Scheme::parse(value).ok_or_else(bad)?),
            "employment" => self.employment = Some(Employment::parse(value).ok_or_else(bad)?),
            "care_location" => {
                self.care_location = Some(CareLocation::parse(value).ok_or_else(bad)?)
            }
            "filing_type" => self.filing_type = Some(FilingType::parse(value).ok_or_else(bad)?),
            "filed" => self.filed = Some(flag()?),
            "stage" => self.stage = Some(Stage::parse(value).ok_or_else(bad)?),
            "visit" => self.visit = Some(Visit::parse(value).ok_or_else(bad)?),
            "by_proxy" => self.by_proxy = Some(flag()?),
            "mentions_chronic" => self.mentions_chronic = Some(flag()?),
            _ => return Err(unknown_slot(slot)),
        }
        Ok(())
    }

    /// The value of a slot as [`Situation::set`] takes it; `None` when absent or not a slot.
    pub fn get(&self, slot: &str) -> Option<String> {
        match slot {
            "insured_region" => self.insured_region.clone(),
            "scheme" => self.scheme.map(|v| v.as_str().to_string()),
            "employment" => self.employment.map(|v| v.as_str().to_string()),
            "care_location" => self.care_location.map(|v| v.as_str().to_string()),
            "filing_type" => self.filing_type.map(|v| v.as_str().to_string()),
            "filed" => self.filed.map(|b| b.to_string()),
            "stage" => self.stage.map(|v| v.as_str().to_string()),
            "visit" => self.visit.map(|v| v.as_str().to_string()),
            "by_proxy" => self.by_proxy.map(|b| b.to_string()),
            "mentions_chronic" => self.mentions_chronic.map(|b| b.to_string()),
            _ => None,
        }
    }
}

/// The allowed values of a slot (built-in regions only), or `None` if it is not a slot.
pub fn slot_values(slot: &str) -> Option<&'static [&'static str]> {
    SLOTS.iter().find(|(s, _)| *s == slot).map(|&(_, v)| v)
}

/// What users call a slot.
fn title(slot: &str) -> &'static str {
    match slot {
        "insured_region" => "参保地",
        "scheme" => "参保险种",
        "employment" => "在职或退休",
        "care_location" => "就医地",
        "filing_type" => "备案类型",
        "filed" => "是否已备案",
        "stage" => "就医阶段",
        "visit" => "就医类型",
        "by_proxy" => "是否由他人代办",
        "mentions_chronic" => "是否涉及门诊慢特病或国谈药",
        _ => "内容",
    }
}

/// The allowed values of a slot for a message: `"a"（甲）、"b"（乙）`.
fn hint(slot: &str, extra_regions: &[String]) -> String {
    let yes_no = |yes: &str, no: &str| format!("true（{yes}）或 false（{no}）");
    match slot {
        "insured_region" => {
            let mut v = vec![
                "\"suzhou\"（苏州市）".to_string(),
                "\"zhangjiagang\"（张家港市）".to_string(),
            ];
            v.extend(extra_regions.iter().map(|r| format!("\"{r}\"")));
            v.join("、")
        }
        "scheme" => Scheme::hint(),
        "employment" => Employment::hint(),
        "care_location" => CareLocation::hint(),
        "filing_type" => FilingType::hint(),
        "stage" => Stage::hint(),
        "visit" => Visit::hint(),
        "filed" => yes_no("备案已办好", "还没备案"),
        "by_proxy" => yes_no("由他人代办", "本人办理"),
        "mentions_chronic" => yes_no("涉及门诊慢特病或国谈药", "不涉及"),
        _ => String::new(),
    }
}

fn unknown_slot(key: &str) -> FieldError {
    let known: Vec<&str> = SLOTS.iter().map(|(s, _)| *s).collect();
    FieldError::new(
        key,
        format!(
            "不认识的字段“{key}”，请删除它或检查拼写。可以填写的字段：{}。",
            known.join("、")
        ),
    )
}

/// The value of a slot a rule needs, or an error asking for it.
fn need<T: Clone>(value: &Option<T>, slot: &str) -> Result<T, FieldError> {
    value.clone().ok_or_else(|| {
        FieldError::new(
            slot,
            format!(
                "还需要知道{}才能列出清单，请填写 {slot}：{}。",
                title(slot),
                hint(slot, &[])
            ),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/// One item of a list, with the text users read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = ChecklistItem)]
pub struct Item {
    /// The item's id (checklist.md).
    pub id: String,
    /// What users read.
    pub text: String,
    /// The id of the document it comes from (knowledge/sources.toml).
    pub source: String,
}

/// The checklist: ids of each part, and the texts of the filing and manual items (in that
/// order). Serializes to exactly the object of cli.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Checklist {
    /// The ids of the filing items (checklist.md), in order; empty when no filing is needed.
    pub filing: Vec<String>,
    /// The ids of the manual-reimbursement (零星报销) items, when care is paid first and
    /// claimed afterwards.
    pub manual: Vec<String>,
    /// The ids of the warnings that apply to this situation (checklist.md).
    pub warnings: Vec<String>,
    /// The ids of the channels to file through, for this insured region.
    pub channels: Vec<String>,
    /// The filing and manual items with the texts users read and their sources, in that
    /// order.
    pub items: Vec<Item>,
}

/// The checklist for a situation, or an error naming the first slot a rule needs and the
/// situation lacks (see the module docs for the rules and their sources).
pub fn checklist(s: &Situation, texts: &ChecklistTexts) -> Result<Checklist, FieldError> {
    // insured elsewhere (docs/spec-extensions.md): that region's rules, not ours
    if s.insured_region.as_deref() == Some(OTHER_REGION) {
        return Err(FieldError::new(
            "insured_region",
            "外地参保的，备案材料和办理渠道按参保地的规定，请咨询参保地医保经办机构；在苏州、张家港看病时，先在参保地备案（就医地选苏州或张家港），再持卡到联网医院直接结算。",
        ));
    }
    if let Some(region) = &s.insured_region
        && !texts.regions.is_empty()
        && texts.regions.get(region).is_none()
    {
        let known: Vec<String> = texts
            .regions
            .iter()
            .map(|r| format!("\"{}\"（{}）", r.id, r.name))
            .collect();
        return Err(FieldError::new(
            "insured_region",
            format!(
                "“{region}”不是有效的参保地，请填写以下之一：{}。",
                known.join("、")
            ),
        ));
    }
    let stage = need(&s.stage, "stage")?;
    let filing_type = need(&s.filing_type, "filing_type")?;
    let visit = need(&s.visit, "visit")?;
    let filed = filed(s, stage, filing_type)?;
    let discharged = stage == Stage::DischargedSelfPaid;

    // Filing list: before or during care when not filed; after a self-paid discharge only the
    // four types may backfill (002 相关事项3).
    let filing = !filed && (!discharged || filing_type.may_backfill());
    // Manual list: cash already paid, or maternity care that must be paid first (001; 004 第十八条).
    let manual = discharged || visit == Visit::Maternity;

    let by_proxy = if filing {
        need(&s.by_proxy, "by_proxy")?
    } else {
        false
    };
    let region = if filing || filing_type == FilingType::Temporary {
        Some(need(&s.insured_region, "insured_region")?)
    } else {
        s.insured_region.clone()
    };
    let region_data = region.as_deref().and_then(|r| texts.regions.get(r));
    let cross_province = if filing {
        !need(&s.care_location, "care_location")?.in_jiangsu()
    } else {
        false
    };

    let item_applies = |id: ItemId| match id {
        ItemId::Identity | ItemId::FilingForm => filing,
        ItemId::ResettlementProof
        | ItemId::ResidenceProof
        | ItemId::WorkProof
        | ItemId::ReferralProof => filing && filing_type.proof() == Some(id),
        ItemId::ProxyIdentity => filing && by_proxy,
        ItemId::SocialSecurityCard => manual,
        ItemId::Invoice => {
            manual
                && matches!(
                    visit,
                    Visit::Inpatient | Visit::Outpatient | Visit::Emergency
                )
        }
        ItemId::InpatientCostList | ItemId::DiagnosisOrDischargeSummary => {
            manual && visit == Visit::Inpatient
        }
        ItemId::OutpatientCostList | ItemId::PrescriptionOrRecord => {
            manual && visit == Visit::Outpatient
        }
        ItemId::DetailedCostList => manual && matches!(visit, Visit::Emergency | Visit::Maternity),
        ItemId::EmergencyDiagnosis => manual && visit == Visit::Emergency,
        ItemId::MaternityInvoice | ItemId::DischargeSummary => manual && visit == Visit::Maternity,
    };
    let warning_applies = |id: WarningId| match id {
        WarningId::MaternityPayFirst => visit == Visit::Maternity,
        WarningId::BackfillBeforeDischarge => stage == Stage::InHospital && !filed,
        WarningId::BackfillNoPromise => discharged,
        WarningId::TemporaryReducedRatio => {
            filing_type == FilingType::Temporary
                && region_data.is_some_and(|r| r.temporary_reduced_ratio)
        }
        WarningId::KeepThermalCopies | WarningId::ManualDeadline => manual,
        WarningId::ChronicRegister => s.mentions_chronic == Some(true),
        WarningId::EmergencyDirect => visit == Visit::Emergency && !filed,
    };
    let channel_applies = |id: ChannelId| match id {
        ChannelId::Counter => filing || manual,
        ChannelId::JiangsuApp => filing,
        ChannelId::NationalApp | ChannelId::NationalMiniprogram => filing && cross_province,
        // the region's own channels come from its file (below)
        ChannelId::WechatSuzhou | ChannelId::EsscardApp => false,
        ChannelId::Hospital => filing && filing_type == FilingType::Referral,
    };
    // checklist.md's order: the general channels, the region's own, then `hospital`
    let mut channels = names(&select(ChannelId::ALL, channel_applies));
    if filing && let Some(r) = region_data {
        let at = channels
            .iter()
            .position(|c| c == ChannelId::Hospital.as_str())
            .unwrap_or(channels.len());
        for (i, c) in r.filing_channels.iter().enumerate() {
            channels.insert(at + i, c.clone());
        }
    }

    let items = select(ItemId::ALL, item_applies);
    let (filing_items, manual_items): (Vec<ItemId>, Vec<ItemId>) =
        items.iter().partition(|i| i.is_filing());
    Ok(Checklist {
        filing: names(&filing_items),
        manual: names(&manual_items),
        warnings: names(&select(WarningId::ALL, warning_applies)),
        channels,
        items: items
            .iter()
            .map(|&id| texts.item_text(id, discharged))
            .collect(),
    })
}

/// The ids that apply, in `all` order.
fn select<Id: Copy>(all: &[Id], applies: impl Fn(Id) -> bool) -> Vec<Id> {
    all.iter().copied().filter(|&id| applies(id)).collect()
}

fn names<Id: Keyword>(ids: &[Id]) -> Vec<String> {
    ids.iter().map(|id| id.name().to_string()).collect()
}

/// Whether the filing is in force: `filed` when given, else what the situation settles.
fn filed(s: &Situation, stage: Stage, filing_type: FilingType) -> Result<bool, FieldError> {
    match (s.filed, filing_type, stage) {
        (Some(true), FilingType::None, _) => Err(FieldError::new(
            "filed",
            "备案类型选的是“没有备案”（filing_type 为 \"none\"），filed 就不能是 true。\
             请把 filed 改为 false，或把 filing_type 改成您办的备案类型。",
        )),
        (Some(filed), _, _) => Ok(filed),
        // 没有备案; "how do I file?"; after a self-paid discharge the filing was not in force.
        (None, FilingType::None, _) | (None, _, Stage::BeforeCare | Stage::DischargedSelfPaid) => {
            Ok(false)
        }
        (None, _, Stage::InHospital) => need(&s.filed, "filed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn knowledge_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge")
    }

    fn real_toml() -> String {
        std::fs::read_to_string(knowledge_dir().join(FILE)).unwrap()
    }

    fn texts() -> ChecklistTexts {
        load(&knowledge_dir()).unwrap_or_else(|es| panic!("{}", es.join("\n")))
    }

    /// A complete situation (张家港, 省内, 异地长期居住, not filed, before care, 住院, in person)
    /// with `changes` applied; a `null` change removes the slot.
    fn situation(changes: Value) -> Value {
        let mut s = json!({
            "insured_region": "zhangjiagang",
            "care_location": "in_province",
            "filing_type": "long_term_resident",
            "filed": false,
            "stage": "before_care",
            "visit": "inpatient",
            "by_proxy": false,
        });
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                s.as_object_mut().unwrap().remove(k);
            } else {
                s[k] = v.clone();
            }
        }
        s
    }

    fn run(input: &Value) -> Result<Checklist, FieldError> {
        Situation::from_json(input).and_then(|s| checklist(&s, &texts()))
    }

    /// The one helper of the rule tests: the ids of each part, and `items` = filing + manual.
    fn check(
        input: Value,
        filing: &[&str],
        manual: &[&str],
        warnings: &[&str],
        channels: &[&str],
    ) -> Checklist {
        let list = run(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(list.filing, filing, "filing for {input}");
        assert_eq!(list.manual, manual, "manual for {input}");
        assert_eq!(list.warnings, warnings, "warnings for {input}");
        assert_eq!(list.channels, channels, "channels for {input}");
        let item_ids: Vec<&str> = list.items.iter().map(|i| i.id.as_str()).collect();
        let expected: Vec<&str> = filing.iter().chain(manual).copied().collect();
        assert_eq!(item_ids, expected, "items for {input}");
        for item in &list.items {
            assert!(!item.text.is_empty() && !item.source.is_empty(), "{item:?}");
        }
        list
    }

    fn check_err(input: Value, field: &str) -> FieldError {
        let e = run(&input).expect_err(&format!("{input} should fail on {field}"));
        assert_eq!(e.field, field, "{input}: {e}");
        assert!(!e.message.is_empty());
        e
    }

    const JS_FILING: &[&str] = &["counter", "jiangsu-app", "esscard-app"];
    const INPATIENT: &[&str] = &[
        "social-security-card",
        "invoice",
        "inpatient-cost-list",
        "diagnosis-or-discharge-summary",
    ];
    const MANUAL_WARNINGS: &[&str] = &[
        "backfill-no-promise",
        "keep-thermal-copies",
        "manual-deadline",
    ];
    /// After a temporary trip: the 80% rule applies to 张家港 too (the whole city of Suzhou).
    const MANUAL_TEMPORARY_WARNINGS: &[&str] = &[
        "backfill-no-promise",
        "temporary-reduced-ratio",
        "keep-thermal-copies",
        "manual-deadline",
    ];

    // --- filing checklist ---

    #[test]
    fn identity_and_form_always_temporary_has_no_proof() {
        check(
            situation(json!({"filing_type": "temporary"})),
            &["identity", "filing-form"],
            &[],
            &["temporary-reduced-ratio"],
            JS_FILING,
        );
    }

    #[test]
    fn resettled_retiree_needs_resettlement_proof() {
        check(
            situation(json!({"filing_type": "resettled_retiree"})),
            &["identity", "filing-form", "resettlement-proof"],
            &[],
            &[],
            JS_FILING,
        );
    }

    #[test]
    fn long_term_resident_needs_residence_proof() {
        let list = check(
            situation(json!({})),
            &["identity", "filing-form", "residence-proof"],
            &[],
            &[],
            JS_FILING,
        );
        assert!(
            list.items[2].text.contains("承诺书"),
            "the promise option is offered before care"
        );
    }

    #[test]
    fn posted_worker_needs_work_proof() {
        check(
            situation(json!({"filing_type": "posted_worker"})),
            &["identity", "filing-form", "work-proof"],
            &[],
            &[],
            JS_FILING,
        );
    }

    #[test]
    fn referral_needs_referral_proof_and_may_file_at_the_hospital() {
        check(
            situation(json!({"filing_type": "referral"})),
            &["identity", "filing-form", "referral-proof"],
            &[],
            &[],
            &["counter", "jiangsu-app", "esscard-app", "hospital"],
        );
    }

    #[test]
    fn by_proxy_needs_proxy_identity() {
        check(
            situation(json!({"by_proxy": true})),
            &[
                "identity",
                "filing-form",
                "residence-proof",
                "proxy-identity",
            ],
            &[],
            &[],
            JS_FILING,
        );
    }

    #[test]
    fn no_filing_type_before_care_gets_the_general_filing_items() {
        check(
            situation(json!({"filing_type": "none", "filed": null})),
            &["identity", "filing-form"],
            &[],
            &[],
            JS_FILING,
        );
    }

    #[test]
    fn how_to_file_is_filed_absent_before_care() {
        check(
            situation(json!({"filed": null})),
            &["identity", "filing-form", "residence-proof"],
            &[],
            &[],
            JS_FILING,
        );
    }

    #[test]
    fn filed_before_care_needs_nothing() {
        check(situation(json!({"filed": true})), &[], &[], &[], &[]);
    }

    #[test]
    fn filed_needs_neither_proxy_nor_location_nor_region() {
        check(
            situation(
                json!({"filed": true, "by_proxy": null, "care_location": null, "insured_region": null}),
            ),
            &[],
            &[],
            &[],
            &[],
        );
    }

    // --- after a self-paid discharge ---

    #[test]
    fn discharged_temporary_cannot_backfill_and_goes_to_manual() {
        check(
            situation(json!({"stage": "discharged_self_paid", "filing_type": "temporary"})),
            &[],
            INPATIENT,
            MANUAL_TEMPORARY_WARNINGS,
            &["counter"],
        );
    }

    #[test]
    fn discharged_without_filing_cannot_backfill_and_goes_to_manual() {
        check(
            situation(
                json!({"stage": "discharged_self_paid", "filing_type": "none", "filed": null}),
            ),
            &[],
            INPATIENT,
            MANUAL_WARNINGS,
            &["counter"],
        );
    }

    #[test]
    fn discharged_four_types_backfill_without_the_promise_option() {
        for (filing_type, proof) in [
            ("resettled_retiree", "resettlement-proof"),
            ("long_term_resident", "residence-proof"),
            ("posted_worker", "work-proof"),
            ("referral", "referral-proof"),
        ] {
            let mut channels = JS_FILING.to_vec();
            if filing_type == "referral" {
                channels.push("hospital");
            }
            let list = check(
                situation(json!({"stage": "discharged_self_paid", "filing_type": filing_type})),
                &["identity", "filing-form", proof],
                INPATIENT,
                MANUAL_WARNINGS,
                &channels,
            );
            for item in &list.items {
                assert!(
                    !item.text.contains("或个人承诺书"),
                    "{filing_type}: {item:?}"
                );
            }
        }
    }

    #[test]
    fn discharged_filed_absent_means_not_filed() {
        check(
            situation(json!({"stage": "discharged_self_paid", "filed": null})),
            &["identity", "filing-form", "residence-proof"],
            INPATIENT,
            MANUAL_WARNINGS,
            JS_FILING,
        );
    }

    #[test]
    fn discharged_while_filed_needs_no_backfill() {
        check(
            situation(json!({"stage": "discharged_self_paid", "filed": true})),
            &[],
            INPATIENT,
            MANUAL_WARNINGS,
            &["counter"],
        );
    }

    // --- reimbursement checklist, one row per visit ---

    #[test]
    fn manual_inpatient() {
        check(
            situation(
                json!({"stage": "discharged_self_paid", "filing_type": "temporary", "visit": "inpatient"}),
            ),
            &[],
            INPATIENT,
            MANUAL_TEMPORARY_WARNINGS,
            &["counter"],
        );
    }

    #[test]
    fn manual_outpatient() {
        check(
            situation(
                json!({"stage": "discharged_self_paid", "filing_type": "temporary", "visit": "outpatient"}),
            ),
            &[],
            &[
                "social-security-card",
                "invoice",
                "outpatient-cost-list",
                "prescription-or-record",
            ],
            MANUAL_TEMPORARY_WARNINGS,
            &["counter"],
        );
    }

    #[test]
    fn manual_emergency() {
        check(
            situation(
                json!({"stage": "discharged_self_paid", "filing_type": "temporary", "visit": "emergency"}),
            ),
            &[],
            &[
                "social-security-card",
                "invoice",
                "detailed-cost-list",
                "emergency-diagnosis",
            ],
            &[
                "backfill-no-promise",
                "temporary-reduced-ratio",
                "keep-thermal-copies",
                "manual-deadline",
                "emergency-direct",
            ],
            &["counter"],
        );
    }

    #[test]
    fn manual_maternity() {
        check(
            situation(
                json!({"stage": "discharged_self_paid", "filing_type": "temporary", "visit": "maternity"}),
            ),
            &[],
            &[
                "social-security-card",
                "detailed-cost-list",
                "maternity-invoice",
                "discharge-summary",
            ],
            &[
                "maternity-pay-first",
                "backfill-no-promise",
                "temporary-reduced-ratio",
                "keep-thermal-copies",
                "manual-deadline",
            ],
            &["counter"],
        );
    }

    #[test]
    fn maternity_is_paid_first_even_when_filed_in_every_region() {
        for region in ["suzhou", "zhangjiagang"] {
            check(
                situation(json!({"insured_region": region, "filed": true, "visit": "maternity"})),
                &[],
                &[
                    "social-security-card",
                    "detailed-cost-list",
                    "maternity-invoice",
                    "discharge-summary",
                ],
                &[
                    "maternity-pay-first",
                    "keep-thermal-copies",
                    "manual-deadline",
                ],
                &["counter"],
            );
        }
    }

    #[test]
    fn maternity_not_filed_gets_both_lists() {
        check(
            situation(json!({"visit": "maternity"})),
            &["identity", "filing-form", "residence-proof"],
            &[
                "social-security-card",
                "detailed-cost-list",
                "maternity-invoice",
                "discharge-summary",
            ],
            &[
                "maternity-pay-first",
                "keep-thermal-copies",
                "manual-deadline",
            ],
            JS_FILING,
        );
    }

    // --- warnings ---

    #[test]
    fn in_hospital_not_filed_backfills_before_discharge() {
        check(
            situation(json!({"stage": "in_hospital"})),
            &["identity", "filing-form", "residence-proof"],
            &[],
            &["backfill-before-discharge"],
            JS_FILING,
        );
    }

    #[test]
    fn in_hospital_filed_needs_nothing() {
        check(
            situation(json!({"stage": "in_hospital", "filed": true})),
            &[],
            &[],
            &[],
            &[],
        );
    }

    #[test]
    fn temporary_reduced_ratio_for_suzhou() {
        check(
            situation(json!({"insured_region": "suzhou", "filing_type": "temporary"})),
            &["identity", "filing-form"],
            &[],
            &["temporary-reduced-ratio"],
            &["counter", "jiangsu-app", "wechat-suzhou"],
        );
        check(
            situation(
                json!({"insured_region": "suzhou", "filing_type": "temporary", "filed": true}),
            ),
            &[],
            &[],
            &["temporary-reduced-ratio"],
            &[],
        );
    }

    #[test]
    fn temporary_reduced_ratio_for_zhangjiagang_too_not_for_other_types() {
        // "Suzhou" in checklist.md is the whole city: 张家港 included (its region file says so)
        check(
            situation(json!({"filing_type": "temporary", "filed": true})),
            &[],
            &[],
            &["temporary-reduced-ratio"],
            &[],
        );
        check(
            situation(json!({"insured_region": "suzhou", "filed": true})),
            &[],
            &[],
            &[],
            &[],
        );
    }

    #[test]
    fn chronic_register_when_mentioned() {
        check(
            situation(json!({"filed": true, "mentions_chronic": true})),
            &[],
            &[],
            &["chronic-register"],
            &[],
        );
        check(
            situation(json!({"filed": true, "mentions_chronic": false})),
            &[],
            &[],
            &[],
            &[],
        );
    }

    #[test]
    fn emergency_not_filed_settles_directly() {
        check(
            situation(json!({"visit": "emergency"})),
            &["identity", "filing-form", "residence-proof"],
            &[],
            &["emergency-direct"],
            JS_FILING,
        );
        check(
            situation(json!({"visit": "emergency", "stage": "in_hospital"})),
            &["identity", "filing-form", "residence-proof"],
            &[],
            &["backfill-before-discharge", "emergency-direct"],
            JS_FILING,
        );
    }

    #[test]
    fn emergency_filed_has_no_warning() {
        check(
            situation(json!({"visit": "emergency", "filed": true})),
            &[],
            &[],
            &[],
            &[],
        );
    }

    // --- channels ---

    #[test]
    fn national_channels_only_outside_jiangsu() {
        for location in ["shanghai", "yangtze_delta", "other_province"] {
            check(
                situation(json!({"care_location": location})),
                &["identity", "filing-form", "residence-proof"],
                &[],
                &[],
                &[
                    "counter",
                    "jiangsu-app",
                    "national-app",
                    "national-miniprogram",
                    "esscard-app",
                ],
            );
        }
        check(
            situation(json!({"care_location": "in_province"})),
            &["identity", "filing-form", "residence-proof"],
            &[],
            &[],
            JS_FILING,
        );
    }

    #[test]
    fn suzhou_files_through_its_wechat_account() {
        check(
            situation(json!({"insured_region": "suzhou", "care_location": "other_province"})),
            &["identity", "filing-form", "residence-proof"],
            &[],
            &[],
            &[
                "counter",
                "jiangsu-app",
                "national-app",
                "national-miniprogram",
                "wechat-suzhou",
            ],
        );
    }

    #[test]
    fn a_region_is_data_its_rules_and_channels_come_from_its_file() {
        use crate::guidance::region::{Region, Regions};
        let mut t = texts();
        let mut kunshan = t.regions.get("suzhou").unwrap().clone();
        kunshan.id = "kunshan".into();
        kunshan.temporary_reduced_ratio = false;
        kunshan.filing_channels = vec!["kunshan-wechat".into()];
        kunshan.channels = BTreeMap::from([(
            "kunshan-wechat".to_string(),
            Text {
                text: "“昆山医保”公众号".into(),
                source: "001 线上渠道".into(),
            },
        )]);
        let mut all: Vec<Region> = t.regions.iter().cloned().collect();
        all.push(kunshan);
        t.regions = Regions::from_vec(all);
        let input = situation(json!({"insured_region": "kunshan", "filing_type": "referral"}));
        let list = checklist(&Situation::from_json(&input).unwrap(), &t).unwrap();
        assert_eq!(
            list.channels,
            ["counter", "jiangsu-app", "kunshan-wechat", "hospital"]
        );
        assert_eq!(
            t.channel("kunshan-wechat").unwrap().text,
            "“昆山医保”公众号"
        );
        let input = situation(json!({"insured_region": "kunshan", "filing_type": "temporary"}));
        let list = checklist(&Situation::from_json(&input).unwrap(), &t).unwrap();
        assert!(
            list.warnings.is_empty(),
            "this region's file says no 80% rule"
        );
        // a region no file defines is an error naming the slot and the regions there are
        let e = check_err(
            situation(json!({"insured_region": "kunshan", "filed": true})),
            "insured_region",
        );
        assert!(
            e.message.contains("kunshan") && e.message.contains("zhangjiagang"),
            "{e}"
        );
    }

    // --- missing slots ---

    #[test]
    fn missing_stage_filing_type_visit_are_errors() {
        for slot in ["stage", "filing_type", "visit"] {
            let e = check_err(situation(json!({ slot: null })), slot);
            assert!(e.message.contains(slot), "{e}");
        }
        check_err(json!({}), "stage");
    }

    #[test]
    fn missing_filed_is_an_error_in_hospital() {
        let e = check_err(
            situation(json!({"stage": "in_hospital", "filed": null})),
            "filed",
        );
        assert!(e.message.contains("true"), "says what to type: {e}");
        // without a filing there is nothing to ask
        check(
            situation(json!({"stage": "in_hospital", "filed": null, "filing_type": "none"})),
            &["identity", "filing-form"],
            &[],
            &["backfill-before-discharge"],
            JS_FILING,
        );
    }

    #[test]
    fn missing_proxy_location_region_are_errors_for_the_filing_list() {
        check_err(situation(json!({"by_proxy": null})), "by_proxy");
        check_err(situation(json!({"care_location": null})), "care_location");
        let e = check_err(situation(json!({"insured_region": null})), "insured_region");
        assert!(e.message.contains("\"suzhou\""), "{e}");
    }

    #[test]
    fn missing_region_is_an_error_for_temporary() {
        check_err(
            situation(json!({"filing_type": "temporary", "filed": true, "insured_region": null})),
            "insured_region",
        );
    }

    #[test]
    fn no_filing_with_filed_true_is_a_contradiction() {
        check_err(
            situation(json!({"filing_type": "none", "filed": true})),
            "filed",
        );
    }

    // --- input errors ---

    #[test]
    fn unknown_field_is_named() {
        let e = Situation::from_json(&situation(json!({"stagee": "before_care"}))).unwrap_err();
        assert_eq!(e.field, "stagee");
        assert!(e.message.contains("stage"), "lists the fields: {e}");
    }

    #[test]
    fn unknown_value_of_every_slot_is_named() {
        for &(slot, values) in SLOTS {
            // regions are data: the checklist checks them against the region files
            let e = if slot == "insured_region" {
                run(&situation(json!({ slot: "nonsense" }))).unwrap_err()
            } else {
                Situation::from_json(&situation(json!({ slot: "nonsense" }))).unwrap_err()
            };
            assert_eq!(e.field, slot);
            assert!(e.message.contains("nonsense"), "{e}");
            assert!(e.message.contains(values[0]), "says what to type: {e}");
        }
    }

    #[test]
    fn wrong_json_types_are_errors() {
        for (slot, value) in [
            ("filed", json!(1)),
            ("stage", json!(true)),
            ("visit", json!(["inpatient"])),
            ("by_proxy", json!({})),
        ] {
            let e = Situation::from_json(&situation(json!({ slot: value }))).unwrap_err();
            assert_eq!(e.field, slot);
        }
        assert_eq!(
            Situation::from_json(&json!([1])).unwrap_err().field,
            "input"
        );
        assert_eq!(
            Situation::from_json(&json!("suzhou")).unwrap_err().field,
            "input"
        );
    }

    #[test]
    fn booleans_as_strings_and_null_as_absent() {
        let s = Situation::from_json(
            &json!({"filed": "true", "by_proxy": false, "stage": null, "mentions_chronic": true}),
        )
        .unwrap();
        assert_eq!(
            (s.filed, s.by_proxy, s.stage, s.mentions_chronic),
            (Some(true), Some(false), None, Some(true))
        );
    }

    #[test]
    fn set_and_get_every_value_of_every_slot() {
        let extra = vec!["kunshan".to_string()];
        for &(slot, values) in SLOTS {
            for &value in values.iter().chain(if slot == "insured_region" {
                &["kunshan"][..]
            } else {
                &[]
            }) {
                let mut s = Situation::default();
                s.set_with_regions(slot, value, &extra).unwrap();
                assert_eq!(s.get(slot).as_deref(), Some(value), "{slot}");
            }
            assert_eq!(Situation::default().get(slot), None);
        }
        assert_eq!(slot_values("stage"), Some(Stage::VALUES));
        assert_eq!(slot_values("total"), None);
    }

    #[test]
    fn set_rejects_unknown_slots_and_values_and_keeps_the_old_value() {
        let mut s = Situation::default();
        s.set("stage", "in_hospital").unwrap();
        let e = s.set("stage", "discharged").unwrap_err();
        assert_eq!(e.field, "stage");
        assert_eq!(s.get("stage").as_deref(), Some("in_hospital"));
        assert_eq!(s.set("total", "100").unwrap_err().field, "total");
        assert_eq!(
            s.set("insured_region", "Kun Shan").unwrap_err().field,
            "insured_region"
        );
        assert_eq!(s.set("filed", "yes").unwrap_err().field, "filed");
        assert_eq!(s.get("total"), None);
    }

    #[test]
    fn serializes_to_the_cli_shape() {
        let list = run(&situation(json!({"stage": "discharged_self_paid"}))).unwrap();
        let v = serde_json::to_value(&list).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 5);
        for k in ["filing", "manual", "warnings", "channels", "items"] {
            assert!(keys.contains(&k), "{k}");
        }
        let item = v["items"][0].as_object().unwrap();
        assert_eq!(item.len(), 3);
        assert_eq!(v["items"][0]["id"], "identity");
        assert!(v["items"][0]["text"].is_string() && v["items"][0]["source"].is_string());
    }

    /// Every combination of slot values either fails on a slot or gives a list whose items have
    /// texts, with no promise option in a backfill.
    #[test]
    fn every_situation_is_answered() {
        let texts = texts();
        let mut answered = 0;
        for &stage in Stage::ALL {
            for &filing_type in FilingType::ALL {
                for &visit in Visit::ALL {
                    for filed in [None, Some(false), Some(true)] {
                        for region in ["suzhou", "zhangjiagang"] {
                            for &location in CareLocation::ALL {
                                let s = Situation {
                                    insured_region: Some(region.to_string()),
                                    care_location: Some(location),
                                    filing_type: Some(filing_type),
                                    filed,
                                    stage: Some(stage),
                                    visit: Some(visit),
                                    by_proxy: Some(true),
                                    ..Situation::default()
                                };
                                let Ok(list) = checklist(&s, &texts) else {
                                    continue;
                                };
                                answered += 1;
                                assert_eq!(list.items.len(), list.filing.len() + list.manual.len());
                                if stage == Stage::DischargedSelfPaid {
                                    assert!(
                                        list.items.iter().all(|i| !i.text.contains("或个人承诺书"))
                                    );
                                }
                                assert!(
                                    list.filing.is_empty()
                                        || list.channels.contains(&"counter".to_string())
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(answered > 1000, "{answered}");
    }

    // --- texts ---

    #[test]
    fn real_texts_load_and_cover_every_id() {
        let t = texts();
        for id in ItemId::ALL {
            let text = t.item(id.as_str()).unwrap();
            assert!(
                !text.text.is_empty() && text.source.starts_with("00"),
                "{id:?}"
            );
            assert_eq!(
                t.item_text(*id, true).text.contains("承诺书"),
                id.has_promise_option(),
                "{id:?}"
            );
        }
        for id in WarningId::VALUES {
            assert!(!t.warning(id).unwrap().text.is_empty(), "{id}");
        }
        for id in ChannelId::VALUES {
            assert!(!t.channel(id).unwrap().text.is_empty(), "{id}");
        }
        assert!(
            t.item("nope").is_none() && t.warning("nope").is_none() && t.channel("nope").is_none()
        );
    }

    fn parse_errors(toml: &str) -> Vec<String> {
        parse(toml).expect_err("should be invalid")
    }

    #[test]
    fn empty_text_is_an_error_naming_file_id_and_field() {
        let bad = real_toml().replace("text = \"医院收费票据\"", "text = \"  \"");
        assert_eq!(
            parse_errors(&bad),
            ["checklist.toml: items.invoice: field `text` must not be empty"]
        );
    }

    #[test]
    fn missing_and_unknown_ids_are_errors() {
        let bad = real_toml().replace("[warnings.manual-deadline]", "[warnings.manual-deadlines]");
        let es = parse_errors(&bad);
        assert_eq!(es.len(), 2, "{es:?}");
        assert!(
            es[0].starts_with("checklist.toml: warnings.manual-deadlines: unknown id"),
            "{es:?}"
        );
        assert!(
            es[1].starts_with("checklist.toml: warnings.manual-deadline: missing"),
            "{es:?}"
        );
        let es = parse_errors("");
        assert_eq!(
            es.len(),
            ItemId::ALL.len() + WarningId::ALL.len() + ChannelId::ALL.len()
        );
    }

    #[test]
    fn unknown_field_is_an_error() {
        let bad = real_toml().replace(
            "[channels.hospital]\n",
            "[channels.hospital]\nphone = \"12345\"\n",
        );
        let es = parse_errors(&bad);
        assert!(
            es.len() == 1 && es[0].starts_with("checklist.toml: ") && es[0].contains("phone"),
            "{es:?}"
        );
        let es = parse_errors(&format!("{}\n[extra]\n", real_toml()));
        assert!(es[0].contains("extra"), "{es:?}");
    }

    #[test]
    fn text_must_be_one_short_line_and_source_must_cite_a_seed() {
        let bad = real_toml()
            .replace("text = \"出院小结\"", "text = \"\"\"出院\n小结\"\"\"")
            .replace(
                "text = \"门诊费用清单\"",
                &format!("text = \"{}\"", "长".repeat(MAX_TEXT_CHARS + 1)),
            )
            .replace("source = \"004 第二十条\"", "source = \"规程第二十条\"")
            .replace("source = \"000 常见问题3\"", "source = \"\"");
        let es = parse_errors(&bad);
        assert_eq!(
            es,
            [
                "checklist.toml: items.outpatient-cost-list: field `text` must be at most 100 characters (one short line)",
                "checklist.toml: items.discharge-summary: field `text` must be one line",
                "checklist.toml: warnings.manual-deadline: field `source` must start with a seed id and a space, like \"004 第十九条\" (got \"规程第二十条\")",
                "checklist.toml: channels.esscard-app: field `source` must not be empty",
            ]
        );
    }

    #[test]
    fn backfill_text_is_required_for_promise_items_and_refused_elsewhere() {
        let real = real_toml();
        let line = real
            .lines()
            .find(|l| l.starts_with("backfill_text") && l.contains("居住证"))
            .unwrap();
        let bad = real
            .replace(&format!("{line}\n"), "")
            .replace(
                "[items.invoice]\n",
                "[items.invoice]\nbackfill_text = \"票据\"\n",
            )
            .replace(
                "[channels.hospital]\n",
                "[channels.hospital]\nbackfill_text = \"医院\"\n",
            );
        let es = parse_errors(&bad);
        assert_eq!(es.len(), 3, "{es:?}");
        assert!(es[0].starts_with(
            "checklist.toml: items.residence-proof: field `backfill_text` is required"
        ));
        assert!(
            es[1].starts_with("checklist.toml: items.invoice: field `backfill_text` is only for")
        );
        assert!(es[2].starts_with(
            "checklist.toml: channels.hospital: field `backfill_text` is only for items"
        ));
    }

    #[test]
    fn syntax_errors_and_missing_files_name_the_file() {
        let es = parse_errors("[items.identity\n");
        assert!(
            es.len() == 1 && es[0].starts_with("checklist.toml: "),
            "{es:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let es = load(dir.path()).unwrap_err();
        assert!(
            es.len() == 1 && es[0].starts_with("checklist.toml: cannot read"),
            "{es:?}"
        );
    }
}
