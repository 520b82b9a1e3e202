//! The reimbursement estimate (`../shared/spec/estimate.md`): a pure function of a
//! [`Policy`] and the user's [`EstimateInput`], giving an itemised [`Estimate`].
//!
//! Money is `rust_decimal::Decimal` from parse to render: JSON numbers are read through their
//! text, never through a float. Every product (class-B copay, reduced deductible, band amount)
//! is rounded to 0.01 yuan, half away from zero, before it is summed.
//!
//! The computation:
//! 1. `class_b_copay = round(class_b × class_b_copay)`; `eligible = total − self_pay − class_b_copay`.
//! 2. The deductible of the hospital level; for the 2nd inpatient admission of the year times
//!    `subsequent_admission_factor`, from the 3rd on `later_admission_deductible` when the
//!    policy has one; with `deductible_basis = "yearly"` (one deductible a year, Suzhou's
//!    门诊共济) less the year's eligible cost before (`cumulative_eligible_before`), not below 0.
//!    `deductible_applied = min(eligible, deductible)`.
//! 3. Bands pay the part of `(C + deductible_applied, C + eligible]` in each band, times the
//!    band's rate (its rate for the hospital level, when it differs by level) and the
//!    cross-region factor (`C` = the year's cumulative eligible cost before
//!    this admission for `bands_basis = "cumulative"`, else 0).
//! 4. The fund pays the sum, capped at what is left of the annual cap; the patient the rest.
//!
//! The cross-region factor is 1, except: not filed and not an emergency → the policy's
//! `unfiled_factor` (this takes precedence); `filing_type = temporary` → `temporary_factor`.
//! An emergency settles directly (`route = direct`) whether filed or not, with factor 1 (or
//! `temporary_factor` for a temporary filing).
//!
//! An estimate refuses (a [`FieldError`] on the field that triggers it, with a Chinese reason)
//! whenever the policy lacks what the case needs: the visit's section, the person's parameter
//! set, the hospital level's deductible, the repeat-admission rule, the cross-region factor,
//! or the class-B copay rate when `class_b > 0`. When the policy has no class-B copay rate and
//! `class_b` is 0, the estimate goes ahead and says in `rules` that no class-B copay was counted.
//!
//! A policy's `assumption` (e.g. 张家港 estimated with the Suzhou city-level table) is the
//! rule right after the policy line, so that even the chat's three-rule summary shows it.
//!
//! Besides the fields of estimate.md, the input accepts `insured_region` as another name for
//! `policy` (checklist.md: region ids are policy ids) and an optional `care_location`; with it,
//! `rules` states the catalogue rule of that location instead of both general rules.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, Type};

use super::FieldError;
use super::policy::{
    BandsBasis, DeductibleBasis, Param, ParamSet, PersonSlot, Policies, Policy, SelectError,
};
use super::values::slot_values;
pub use super::values::{CareLocation, Employment, FilingType, Scheme};

/// The largest amount an input may carry (estimate.md).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(10_000_000, 0, 0, false, 0);

/// The largest `admissions_before` accepted.
pub const MAX_ADMISSIONS: u32 = 366;

/// The input fields: estimate.md's, plus `insured_region` and `care_location`.
const FIELDS: [&str; 17] = [
    "policy",
    "insured_region",
    "visit",
    "hospital_level",
    "filing_type",
    "filed",
    "emergency",
    "total",
    "self_pay",
    "class_b",
    "admissions_before",
    "fund_paid_this_year",
    "cumulative_eligible_before",
    "scheme",
    "employment",
    "category",
    "care_location",
];

slot_values!(
    /// 住院 / 门诊.
    #[schema(as = EstimateVisit)]
    Visit {
        Inpatient = "inpatient": "住院",
        Outpatient = "outpatient": "门诊",
    }
);

slot_values!(
    /// Resident category.
    Category {
        Student = "student": "学生或少儿",
        Adult = "adult": "其他居民",
    }
);

/// A validated estimate input (estimate.md).
// Not serde: [`EstimateInput::from_json`] reads it (amounts as strings or numbers, errors
// naming the field); its schema (the API's document) describes that JSON form.
#[derive(Debug, Clone, PartialEq, Eq, utoipa::ToSchema)]
pub struct EstimateInput {
    /// A policy id of knowledge/policies/ (suzhou, zhangjiagang); an unknown id is a 422
    /// naming policy.
    #[schema(min_length = 1)]
    pub policy: String,
    /// 住院 / 门诊.
    pub visit: Visit,
    /// 1, 2 or 3.
    #[schema(schema_with = hospital_level_schema)]
    pub hospital_level: u8,
    /// 备案类型.
    pub filing_type: FilingType,
    /// Whether the filing (备案) is done; may be left out when filing_type is none.
    pub filed: bool,
    /// Emergency care (急诊) without a filing.
    #[schema(default = false, required = false)]
    pub emergency: bool,
    #[schema(schema_with = amount_schema)]
    pub total: Decimal,
    #[schema(schema_with = amount_schema, required = false)]
    pub self_pay: Decimal,
    #[schema(schema_with = amount_schema, required = false)]
    pub class_b: Decimal,
    /// Earlier inpatient stays this year (0 when none): the deductible applies per stay.
    #[schema(minimum = 0, required = false)]
    pub admissions_before: u32,
    #[schema(schema_with = amount_schema, required = false)]
    pub fund_paid_this_year: Decimal,
    #[schema(schema_with = amount_schema, required = false)]
    pub cumulative_eligible_before: Decimal,
    /// 职工医保 / 城乡居民医保.
    pub scheme: Option<Scheme>,
    /// 在职 / 退休.
    pub employment: Option<Employment>,
    /// 居民类别 (resident scheme): 学生或少儿 / 其他居民.
    pub category: Option<Category>,
    /// 就医地 (yidi's extension: relative to Jiangsu).
    pub care_location: Option<CareLocation>,
}

impl EstimateInput {
    /// Reads an input object. Amounts may be JSON strings or numbers; `hospital_level`,
    /// `admissions_before` and the booleans also accept their string forms ("3", "true"), as
    /// dialogs store slots as strings; `null` counts as absent. Unknown fields are errors.
    /// `filed` may be left out when `filing_type` is `none` (it is then false).
    pub fn from_json(v: &Value) -> Result<EstimateInput, FieldError> {
        let Value::Object(map) = v else {
            return Err(FieldError::new(
                "input",
                "请提供一个 JSON 对象，例如 {\"policy\": \"suzhou\", \"visit\": \"inpatient\", \
                 \"hospital_level\": 3, \"filing_type\": \"long_term_resident\", \"filed\": true, \
                 \"total\": \"20000\"}。",
            ));
        };
        if let Some(key) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(FieldError::new(
                key.as_str(),
                format!(
                    "不认识的字段“{key}”，请删除它或检查拼写。可以填写的字段：{}。",
                    FIELDS.join("、")
                ),
            ));
        }
        let policy = read_policy(map)?;
        let visit = read_choice::<Visit>(map, "visit", "就医类型", Visit::parse, Visit::hint)?
            .ok_or_else(|| missing("visit", "就医类型", &Visit::hint()))?;
        let hospital_level = read_level(map)?;
        let filing_type = read_choice(
            map,
            "filing_type",
            "备案类型",
            FilingType::parse,
            FilingType::hint,
        )?
        .ok_or_else(|| missing("filing_type", "备案类型", &FilingType::hint()))?;
        let filed = match read_bool(map, "filed", "是否已备案", "已备案", "未备案")? {
            Some(b) => b,
            // Without a filing there is nothing to have filed.
            None if filing_type == FilingType::None => false,
            None => {
                return Err(missing(
                    "filed",
                    "是否已备案",
                    "true（已备案）或 false（未备案）",
                ));
            }
        };
        let emergency =
            read_bool(map, "emergency", "是否急诊抢救", "是急诊抢救", "不是急诊")?.unwrap_or(false);
        let total = read_amount(map, "total")?.ok_or_else(|| {
            FieldError::new(
                "total",
                "请填写医疗总费用 total，例如 20000 或 \"20000.50\"。",
            )
        })?;
        let zero = |r: Option<Decimal>| r.unwrap_or(Decimal::ZERO);
        let input = EstimateInput {
            policy,
            visit,
            hospital_level,
            filing_type,
            filed,
            emergency,
            total,
            self_pay: zero(read_amount(map, "self_pay")?),
            class_b: zero(read_amount(map, "class_b")?),
            admissions_before: read_admissions(map)?,
            fund_paid_this_year: zero(read_amount(map, "fund_paid_this_year")?),
            cumulative_eligible_before: zero(read_amount(map, "cumulative_eligible_before")?),
            scheme: read_choice(map, "scheme", "参保险种", Scheme::parse, Scheme::hint)?,
            employment: read_choice(
                map,
                "employment",
                "在职或退休",
                Employment::parse,
                Employment::hint,
            )?,
            category: read_choice(map, "category", "居民类别", Category::parse, Category::hint)?,
            care_location: read_choice(
                map,
                "care_location",
                "就医地",
                CareLocation::parse,
                CareLocation::hint,
            )?,
        };
        input.validate()?;
        Ok(input)
    }

    /// Checks the rules that tie fields together and the bounds of every amount (also for
    /// inputs built in code rather than read from JSON).
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.policy.trim().is_empty() {
            return Err(FieldError::new(
                "policy",
                "请填写参保地政策 policy，例如 \"suzhou\"。",
            ));
        }
        if !(1..=3).contains(&self.hospital_level) {
            return Err(level_error());
        }
        for (field, value) in [
            ("total", self.total),
            ("self_pay", self.self_pay),
            ("class_b", self.class_b),
            ("fund_paid_this_year", self.fund_paid_this_year),
            (
                "cumulative_eligible_before",
                self.cumulative_eligible_before,
            ),
        ] {
            check_amount(field, value)?;
        }
        if self.self_pay + self.class_b > self.total {
            let field = if self.self_pay > self.total {
                "self_pay"
            } else {
                "class_b"
            };
            return Err(FieldError::new(
                field,
                format!(
                    "目录外全自费金额（{} 元）与乙类项目金额（{} 元）之和不能超过医疗总费用（{} 元），请核对后重新填写。",
                    money(self.self_pay),
                    money(self.class_b),
                    money(self.total)
                ),
            ));
        }
        if self.admissions_before > MAX_ADMISSIONS {
            return Err(admissions_error());
        }
        if self.filing_type == FilingType::None && self.filed {
            return Err(FieldError::new(
                "filed",
                "备案类型是“没有备案”，但又填写了已备案。请把 filed 填为 false，或在 filing_type 中选择实际的备案类型。",
            ));
        }
        Ok(())
    }

    fn slot(&self, slot: PersonSlot) -> Option<&'static str> {
        match slot {
            PersonSlot::Scheme => self.scheme.map(Scheme::as_str),
            PersonSlot::Employment => self.employment.map(Employment::as_str),
            PersonSlot::Category => self.category.map(Category::as_str),
        }
    }
}

/// How the fund's share is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// 直接结算 at a networked hospital (filed, or an emergency).
    Direct,
    /// 先垫付，再回参保地手工（零星）报销.
    Manual,
}

/// What the fund pays in one cost band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BandAmount {
    /// Where this estimate's paid range starts in the band.
    #[serde(serialize_with = "ser_money")]
    #[schema(schema_with = money_schema)]
    pub lower: Decimal,
    /// The band's upper bound; `None` (JSON `null`) for the unbounded last band.
    #[serde(serialize_with = "ser_opt_money")]
    #[schema(schema_with = opt_money_schema, required = true)]
    pub upper: Option<Decimal>,
    #[serde(serialize_with = "ser_money")]
    #[schema(schema_with = money_schema)]
    pub portion: Decimal,
    /// As written in the policy.
    #[serde(serialize_with = "ser_plain")]
    #[schema(value_type = String, example = "0.80")]
    pub rate: Decimal,
    /// The cross-region factor applied to this band's rate, if any.
    #[serde(serialize_with = "ser_plain")]
    #[schema(value_type = String, example = "0.80")]
    pub factor: Decimal,
    #[serde(serialize_with = "ser_money")]
    #[schema(schema_with = money_schema)]
    pub amount: Decimal,
}

/// An itemised estimate (estimate.md "Output").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(description = "spec/estimate.md; all decimals are strings with two places")]
pub struct Estimate {
    /// The policy id used.
    pub policy: String,
    #[serde(serialize_with = "ser_money")]
    #[schema(schema_with = money_schema)]
    pub eligible: Decimal,
    #[serde(serialize_with = "ser_money")]
    #[schema(schema_with = money_schema)]
    pub self_pay: Decimal,
    #[serde(serialize_with = "ser_money")]
    #[schema(schema_with = money_schema)]
    pub class_b_copay: Decimal,
    #[serde(serialize_with = "ser_money")]
    #[schema(schema_with = money_schema)]
    pub deductible_applied: Decimal,
    /// The fund's share per cost band: the amount in the band, the rate, the product.
    pub bands: Vec<BandAmount>,
    /// Whether the yearly cap (最高支付限额) limited the fund's share.
    pub cap_applied: bool,
    #[serde(serialize_with = "ser_money")]
    #[schema(schema_with = money_schema)]
    pub fund_pays: Decimal,
    #[serde(serialize_with = "ser_money")]
    #[schema(schema_with = money_schema)]
    pub patient_pays: Decimal,
    /// How the bill is settled: directly at the hospital, or reimbursed afterwards.
    pub route: Route,
    /// The sources and rules used, in Chinese.
    pub rules: Vec<String>,
    /// The sentence every estimate carries: an estimate, not a decision.
    pub disclaimer: String,
}

/// The disclaimer every estimate carries.
pub const DISCLAIMER: &str = "以上为估算结果，仅供参考，实际报销金额以医保经办机构结算为准。";
/// Added to the disclaimer when a parameter used comes from secondary sources.
pub const UNVERIFIED_NOTE: &str = "参数来自公开二手资料，尚未与官方文件核对。";

/// Computes the estimate for `input` with its policy from `policies`.
pub fn estimate(policies: &Policies, input: &EstimateInput) -> Result<Estimate, FieldError> {
    input.validate()?;
    let policy = policies.get(&input.policy).ok_or_else(|| {
        let ids: Vec<&str> = policies.ids().collect();
        FieldError::new(
            "policy",
            format!(
                "没有找到参保地政策“{}”。请填写以下之一：{}。",
                input.policy,
                if ids.is_empty() {
                    "（暂无）".to_string()
                } else {
                    ids.join("、")
                }
            ),
        )
    })?;
    let set = select(policy, input)?;
    let mut used: Vec<Param> = vec![Param::Deductible, Param::Bands, Param::AnnualCap];
    let mut rules = Vec::new();
    rules.push(format!(
        "政策：{}（{}，{}）",
        policy.name, policy.id, policy.effective
    ));
    if let Some(assumption) = &policy.assumption {
        rules.push(assumption.clone());
    }
    for s in policy.sources.iter().chain(&set.sources) {
        rules.push(format!("参数来源：{s}"));
    }
    if let Some(label) = person_label(&set.path) {
        rules.push(format!("参数组：{label}"));
    }
    rules.extend(catalogue_rules(input.care_location));

    // Cross-region factor.
    let cross = &policy.cross_region;
    let factor = if !input.filed && !input.emergency {
        let f = cross.unfiled_factor.ok_or_else(|| {
            FieldError::new(
                "filed",
                format!(
                    "{}没有收录未备案（且非急诊抢救）异地就医的结付规则，无法估算。建议先办理异地就医备案：住院的，出院结算前补办备案即可在联网医院直接结算；已经自费结算的，请咨询参保地医保经办机构。",
                    policy.name
                ),
            )
        })?;
        used.push(Param::UnfiledFactor);
        rules.push(format!(
            "未备案（非急诊抢救）：按原结付比例的{}结付，需先垫付、再回参保地手工报销{}",
            percent(f),
            cite(&cross.unfiled_source)
        ));
        f
    } else if input.filing_type == FilingType::Temporary {
        let f = cross.temporary_factor.ok_or_else(|| {
            FieldError::new(
                "filing_type",
                format!(
                    "{}没有收录“其他临时外出就医”的结付比例，无法估算。请咨询参保地医保经办机构。",
                    policy.name
                ),
            )
        })?;
        used.push(Param::TemporaryFactor);
        rules.push(format!(
            "其他临时外出就医：按原结付比例的{}结付{}",
            percent(f),
            cite(&cross.temporary_source)
        ));
        f
    } else {
        if input.filed {
            rules.push(format!(
                "已办理{}备案：按参保地原结付比例计算",
                input.filing_type.label()
            ));
        }
        Decimal::ONE
    };
    if input.emergency && !input.filed {
        rules.push(
            "急诊抢救：无论是否备案，联网定点医疗机构按规范传送信息即可直接结算（002 注意事项）"
                .to_string(),
        );
    }

    // Class-B copay.
    let copay_rate = match set.class_b_copay {
        Some(rate) => {
            if !input.class_b.is_zero() {
                used.push(Param::ClassBCopay);
                rules.push(format!("乙类项目：个人先行自付{}", percent(rate)));
            }
            rate
        }
        None if input.class_b.is_zero() => {
            rules.push(
                "该政策未收录乙类先行自付比例：本估算未计入乙类先行自付，实际报销可能更少"
                    .to_string(),
            );
            Decimal::ZERO
        }
        None => {
            return Err(FieldError::new(
                "class_b",
                format!(
                    "{}暂未收录乙类项目的个人先行自付比例，无法估算含乙类项目的费用。如只想粗略估算，可把 class_b 填 0（估算的报销金额会偏高）。",
                    policy.name
                ),
            ));
        }
    };
    let class_b_copay = round(input.class_b * copay_rate);
    let eligible = input.total - input.self_pay - class_b_copay;

    // Deductible.
    let level = input.hospital_level;
    let base = *set.deductible.get(&level).ok_or_else(|| {
        FieldError::new(
            "hospital_level",
            format!(
                "{}暂未收录{}的起付标准，无法估算。可以估算的医院等级：{}。",
                policy.name,
                level_label(level),
                set.deductible
                    .keys()
                    .map(|l| level_label(*l))
                    .collect::<Vec<_>>()
                    .join("、")
            ),
        )
    })?;
    rules.push(format!(
        "起付标准：{}{} {} 元",
        level_label(level),
        input.visit.label(),
        money(base)
    ));
    let repeat = input.visit == Visit::Inpatient && input.admissions_before >= 1;
    let deductible = if !repeat {
        base
    } else if let (true, Some(later)) =
        (input.admissions_before >= 2, set.later_admission_deductible)
    {
        used.push(Param::LaterAdmissionDeductible);
        rules.push(format!(
            "本年度第三次及以后住院：起付标准为 {} 元",
            money(later)
        ));
        later
    } else {
        let f = set.subsequent_admission_factor.ok_or_else(|| {
            FieldError::new(
                "admissions_before",
                format!(
                    "{}没有收录年内再次住院的起付标准，无法估算。如果这是本年度第一次住院，请把 admissions_before 填 0。",
                    policy.name
                ),
            )
        })?;
        used.push(Param::SubsequentAdmissionFactor);
        let d = round(base * f);
        let which = if input.admissions_before == 1 {
            "第二次"
        } else {
            "第二次及以后"
        };
        rules.push(format!(
            "本年度{which}住院：起付标准按 {} 计，为 {} 元",
            percent(f),
            money(d)
        ));
        d
    };
    let deductible = if set.deductible_basis == DeductibleBasis::Yearly {
        used.push(Param::DeductibleBasis);
        let before = input.cumulative_eligible_before;
        let left = (deductible - before).max(Decimal::ZERO);
        rules.push(format!(
            "起付标准按年度计算：本年度此前政策范围内{}费用 {} 元已先抵起付线，本次还需负担起付线 {} 元",
            input.visit.label(),
            money(before),
            money(left)
        ));
        left
    } else {
        deductible
    };
    let deductible_applied = eligible.min(deductible);

    // Bands.
    let offset = match set.bands_basis {
        BandsBasis::Admission => Decimal::ZERO,
        BandsBasis::Cumulative => input.cumulative_eligible_before,
    };
    // rates that differ by hospital level must cover this level
    if set.bands.iter().any(|b| b.rate_for(level).is_none()) {
        return Err(FieldError::new(
            "hospital_level",
            format!(
                "{}暂未收录{}的{}报销比例，无法估算。",
                policy.name,
                level_label(level),
                input.visit.label()
            ),
        ));
    }
    let start = offset + deductible_applied;
    let end = offset + eligible;
    if set.bands_basis == BandsBasis::Cumulative {
        used.push(Param::BandsBasis);
        rules.push(format!(
            "分段结付按本年度累计政策范围内费用计算：此前累计 {} 元，本次起付线以上部分计入全年累计的 {} 至 {} 元段",
            money(offset),
            money(start),
            money(end)
        ));
    }
    let mut bands = Vec::new();
    for band in &set.bands {
        let lower = band.lower.max(start);
        let upper = band.upper.map_or(end, |u| u.min(end));
        if upper <= lower {
            continue;
        }
        let portion = upper - lower;
        let rate = band.rate_for(level).unwrap_or(band.rate);
        if !band.rate_by_level.is_empty() {
            rules.push(format!(
                "报销比例：{}{}{}",
                level_label(level),
                input.visit.label(),
                percent(rate)
            ));
        }
        bands.push(BandAmount {
            lower,
            upper: band.upper,
            portion,
            rate,
            factor,
            amount: round(portion * rate * factor),
        });
    }
    let sum: Decimal = bands.iter().map(|b| b.amount).sum();

    // Annual cap.
    let remaining = (set.annual_cap - input.fund_paid_this_year).max(Decimal::ZERO);
    let cap_applied = sum > remaining;
    let fund_pays = sum.min(remaining);
    rules.push(format!(
        "统筹基金年度最高支付限额 {} 元，本年度已支付 {} 元{}",
        money(set.annual_cap),
        money(input.fund_paid_this_year),
        if cap_applied {
            "，本次按剩余额度封顶"
        } else {
            ""
        }
    ));
    let patient_pays = input.total - fund_pays;

    let route = if input.filed || input.emergency {
        Route::Direct
    } else {
        Route::Manual
    };

    used.sort_unstable();
    let unverified: Vec<&str> = used
        .iter()
        .filter(|p| set.unverified.contains(p) || cross.unverified.contains(p))
        .map(|p| p.label())
        .collect();
    let mut disclaimer = DISCLAIMER.to_string();
    if !unverified.is_empty() {
        rules.push(format!(
            "以下参数来自公开二手资料，尚未与官方文件核对：{}",
            unverified.join("、")
        ));
        disclaimer.push_str(UNVERIFIED_NOTE);
    }

    Ok(Estimate {
        policy: policy.id.clone(),
        eligible,
        self_pay: input.self_pay,
        class_b_copay,
        deductible_applied,
        bands,
        cap_applied,
        fund_pays,
        patient_pays,
        route,
        rules,
        disclaimer,
    })
}

/// Finds the parameter set for the input's visit and person, or says why there is none.
fn select<'p>(policy: &'p Policy, input: &EstimateInput) -> Result<&'p ParamSet, FieldError> {
    let tree = match input.visit {
        Visit::Inpatient => policy.inpatient.as_ref(),
        Visit::Outpatient => policy.outpatient.as_ref(),
    };
    let note = policy.note.as_deref().unwrap_or_default();
    let Some(tree) = tree else {
        if policy.inpatient.is_none() && policy.outpatient.is_none() {
            return Err(FieldError::new(
                "policy",
                match &policy.note {
                    Some(note) => format!("{}：{note}", policy.name),
                    None => format!("{}暂未收录可靠的报销参数，无法估算。", policy.name),
                },
            ));
        }
        let other = match input.visit {
            Visit::Inpatient => Visit::Outpatient,
            Visit::Outpatient => Visit::Inpatient,
        };
        return Err(FieldError::new(
            "visit",
            format!(
                "{}暂未收录{}费用的报销参数（没有找到可靠来源），无法估算；目前只能估算{}费用。{note}",
                policy.name,
                input.visit.label(),
                other.label()
            ),
        ));
    };
    tree.select(|slot| input.slot(slot)).map_err(|e| match e {
        SelectError::Missing(slot) => {
            let (what, hint) = match slot {
                PersonSlot::Scheme => ("参保险种", Scheme::hint()),
                PersonSlot::Employment => ("在职或退休", Employment::hint()),
                PersonSlot::Category => ("居民类别", Category::hint()),
            };
            FieldError::new(
                slot.field(),
                format!(
                    "{}的{}待遇按{what}区分，请填写 {}：{hint}。",
                    policy.name,
                    input.visit.label(),
                    slot.field()
                ),
            )
        }
        SelectError::NotCovered(slot, value) => {
            let label = match slot {
                PersonSlot::Scheme => Scheme::parse(&value).map(Scheme::label),
                PersonSlot::Employment => Employment::parse(&value).map(Employment::label),
                PersonSlot::Category => Category::parse(&value).map(Category::label),
            }
            .unwrap_or(value.as_str());
            FieldError::new(
                slot.field(),
                format!(
                    "{}暂未收录“{label}”的{}报销参数（没有找到可靠来源），无法估算。{note}",
                    policy.name,
                    input.visit.label()
                ),
            )
        }
    })
}

/// The catalogue rule (which list decides what is eligible; whose benefits apply).
fn catalogue_rules(location: Option<CareLocation>) -> Vec<String> {
    const IN_PROVINCE: &str = "省内异地就医：参保地目录、参保地政策（江苏省统一医保目录，待遇执行参保地政策；004 第十一条、001 结算标准）";
    const CROSS_PROVINCE: &str =
        "跨省异地就医（含上海、浙江、安徽）：就医地目录、参保地政策（004 第十一条、001 结算标准）";
    const AMOUNTS: &str = "目录外自费和乙类金额按您填写的数字计算";
    match location {
        None => vec![
            IN_PROVINCE.to_string(),
            CROSS_PROVINCE.to_string(),
            AMOUNTS.to_string(),
        ],
        Some(CareLocation::InProvince) => vec![IN_PROVINCE.to_string(), AMOUNTS.to_string()],
        Some(_) => vec![CROSS_PROVINCE.to_string(), AMOUNTS.to_string()],
    }
}

/// "职工医保·退休" for `inpatient.employee.retired`; `None` for a section-wide set.
fn person_label(path: &str) -> Option<String> {
    let parts: Vec<&str> = path
        .split('.')
        .skip(1)
        .map(|p| match p {
            "employee" => Scheme::Employee.label(),
            "resident" => Scheme::Resident.label(),
            "working" => Employment::Working.label(),
            "retired" => Employment::Retired.label(),
            "student" => Category::Student.label(),
            "adult" => Category::Adult.label(),
            other => other,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("·"))
}

fn level_label(level: u8) -> &'static str {
    match level {
        1 => "一级及基层医院",
        2 => "二级医院",
        _ => "三级医院",
    }
}

fn cite(source: &Option<String>) -> String {
    source
        .as_ref()
        .map(|s| format!("（{s}）"))
        .unwrap_or_default()
}

/// Rounds to 0.01, half away from zero.
fn round(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Two decimal places, as text ("16323.00").
fn money(d: Decimal) -> String {
    let mut r = round(d);
    if r.is_zero() {
        r = Decimal::ZERO;
    }
    r.rescale(2);
    r.to_string()
}

/// "80%" for 0.8.
fn percent(d: Decimal) -> String {
    format!("{}%", (d * Decimal::ONE_HUNDRED).normalize())
}

// ---- the schemas of the JSON forms (the API's document) ----

/// A money amount as [`ser_money`] writes it: a string with two decimal places.
fn money_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^-?[0-9]+\.[0-9]{2}$"))
        .description(Some("decimal with two places"))
        .examples([serde_json::json!("1234.50")])
        .build()
}

/// [`money_schema`] or `null` ([`ser_opt_money`]).
fn opt_money_schema() -> Schema {
    OneOfBuilder::new()
        .item(money_schema())
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

/// An amount as [`read_amount`] reads it: a string or a number.
fn amount_schema() -> Schema {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .description(Some("decimal amount, at most two decimal places"))
        .examples([serde_json::json!("20000.50")])
        .build()
        .into()
}

/// The hospital level: 1, 2 or 3.
fn hospital_level_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some([1, 2, 3]))
        .build()
}

fn ser_money<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&money(*d))
}

fn ser_opt_money<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&money(*d)),
        None => s.serialize_none(),
    }
}

/// Rates and factors: at least two decimal places ("0.80", "1.00"), more when the policy
/// states more ("0.875"), so that no stated digit is lost.
fn ser_plain<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    let mut v = d.normalize();
    if v.scale() < 2 {
        v.rescale(2);
    }
    s.serialize_str(&v.to_string())
}

// ---- reading the JSON input ----

fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn missing(field: &str, what: &str, hint: &str) -> FieldError {
    FieldError::new(field, format!("请填写{what} {field}：{hint}。"))
}

fn read_policy(map: &Map<String, Value>) -> Result<String, FieldError> {
    let read = |key: &str| -> Result<Option<String>, FieldError> {
        match present(map, key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(_) => Err(FieldError::new(
                key,
                format!("请把参保地政策 {key} 填成文字，例如 \"suzhou\"。"),
            )),
        }
    };
    match (read("policy")?, read("insured_region")?) {
        (Some(p), Some(r)) if p != r => Err(FieldError::new(
            "insured_region",
            format!("policy（{p}）与 insured_region（{r}）不一致，请只填写其中一个。"),
        )),
        (Some(p), _) | (None, Some(p)) => Ok(p),
        (None, None) => Err(FieldError::new(
            "policy",
            "请填写参保地政策 policy，例如 \"suzhou\"（苏州）或 \"zhangjiagang\"（张家港）。",
        )),
    }
}

fn read_choice<T>(
    map: &Map<String, Value>,
    field: &str,
    what: &str,
    parse: fn(&str) -> Option<T>,
    hint: fn() -> String,
) -> Result<Option<T>, FieldError> {
    match present(map, field) {
        None => Ok(None),
        Some(Value::String(s)) => parse(s.trim()).map(Some).ok_or_else(|| {
            FieldError::new(
                field,
                format!("{what} {field} 不能是“{s}”，请填写：{}。", hint()),
            )
        }),
        Some(_) => Err(FieldError::new(
            field,
            format!("{what} {field} 请填写：{}。", hint()),
        )),
    }
}

fn level_error() -> FieldError {
    FieldError::new(
        "hospital_level",
        "医院等级 hospital_level 请填写 1（一级及基层医院）、2（二级医院）或 3（三级医院）。",
    )
}

fn read_level(map: &Map<String, Value>) -> Result<u8, FieldError> {
    let level = match present(map, "hospital_level") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match level {
        Some(l @ 1..=3) => Ok(l as u8),
        _ => Err(level_error()),
    }
}

fn read_bool(
    map: &Map<String, Value>,
    field: &str,
    what: &str,
    yes: &str,
    no: &str,
) -> Result<Option<bool>, FieldError> {
    match present(map, field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.trim() == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s.trim() == "false" => Ok(Some(false)),
        Some(_) => Err(FieldError::new(
            field,
            format!("{what} {field} 请填写 true（{yes}）或 false（{no}）。"),
        )),
    }
}

fn admissions_error() -> FieldError {
    FieldError::new(
        "admissions_before",
        format!(
            "本年度此前住院次数 admissions_before 请填写 0 到 {MAX_ADMISSIONS} 之间的整数，例如 0（本年度第一次住院）或 1。"
        ),
    )
}

fn read_admissions(map: &Map<String, Value>) -> Result<u32, FieldError> {
    let n = match present(map, "admissions_before") {
        // the estimate dialog stores 不清楚 as "unknown": estimated as the first admission
        None => return Ok(0),
        Some(Value::String(s)) if s.trim() == "unknown" => return Ok(0),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n <= u64::from(MAX_ADMISSIONS) => Ok(n as u32),
        _ => Err(admissions_error()),
    }
}

fn amount_label(field: &str) -> &'static str {
    match field {
        "total" => "医疗总费用",
        "self_pay" => "目录外全自费金额",
        "class_b" => "乙类项目金额",
        "fund_paid_this_year" => "本年度统筹基金已支付金额",
        _ => "本年度此前累计政策范围内费用",
    }
}

/// Reads an amount given as a JSON string or number (through its text, never a float).
fn read_amount(map: &Map<String, Value>, field: &str) -> Result<Option<Decimal>, FieldError> {
    let unreadable = || {
        FieldError::new(
            field,
            format!(
                "{} {field} 请填写金额数字，例如 20000 或 \"20000.50\"（单位：元）。",
                amount_label(field)
            ),
        )
    };
    let value = match present(map, field) {
        None => return Ok(None),
        Some(Value::String(s)) => super::policy::parse_decimal(s).ok_or_else(unreadable)?,
        Some(Value::Number(n)) => {
            let text = n.to_string();
            let parsed = if text.contains(['e', 'E']) {
                Decimal::from_scientific(&text).ok()
            } else {
                super::policy::parse_decimal(&text)
            };
            match parsed {
                Some(d) => d,
                // a number Decimal cannot hold: say which way it is out of range
                None => beyond_decimal(field, &text)?,
            }
        }
        Some(_) => return Err(unreadable()),
    };
    check_amount(field, value)?;
    Ok(Some(if value.is_zero() {
        Decimal::ZERO
    } else {
        value
    }))
}

/// A JSON number that `Decimal` cannot hold (`9.999e-320`, `1e30`): zero when all its digits
/// are, else the error for its sign and size (tiny numbers have too many decimals).
fn beyond_decimal(field: &str, text: &str) -> Result<Decimal, FieldError> {
    let (mantissa, exponent) = text.split_once(['e', 'E']).map_or((text, 0i64), |(m, e)| {
        let e = e.trim_start_matches('+');
        // beyond i64 only the sign matters
        let e = e.parse::<i64>().unwrap_or(if e.starts_with('-') {
            i64::MIN / 2
        } else {
            i64::MAX / 2
        });
        (m, e)
    });
    let digits = mantissa.trim_start_matches(['-', '+']);
    if digits.chars().all(|c| c == '0' || c == '.') {
        return Ok(Decimal::ZERO);
    }
    if mantissa.starts_with('-') {
        return Err(negative(field));
    }
    // the power of ten of the leading non-zero digit
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let lead = if int.is_empty() {
        -1 - frac.chars().take_while(|&c| c == '0').count() as i64
    } else {
        int.len() as i64 - 1
    };
    if exponent.saturating_add(lead) < 0 {
        Err(too_precise(field))
    } else {
        Err(too_large(field))
    }
}

fn too_precise(field: &str) -> FieldError {
    FieldError::new(
        field,
        format!(
            "{} {field} 最多保留两位小数（精确到分），例如 \"3000.50\"。",
            amount_label(field)
        ),
    )
}

fn too_large(field: &str) -> FieldError {
    FieldError::new(
        field,
        format!(
            "{} {field} 超过一千万元，请检查是否多输了位数。",
            amount_label(field)
        ),
    )
}

fn negative(field: &str) -> FieldError {
    FieldError::new(
        field,
        format!(
            "{} {field} 不能是负数，请填写实际金额，例如 \"3000\"；没有就填 0。",
            amount_label(field)
        ),
    )
}

fn check_amount(field: &str, value: Decimal) -> Result<(), FieldError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(negative(field));
    }
    if value.normalize().scale() > 2 {
        return Err(too_precise(field));
    }
    if value > MAX_AMOUNT {
        return Err(too_large(field));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::str::FromStr;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::guidance::policy::Policy;

    fn reference() -> Policies {
        let mut p = Policies::default();
        p.add_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference-policy.toml"))
            .unwrap();
        p
    }

    fn shipped() -> Policies {
        Policies::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge")).unwrap()
    }

    fn with(text: &str) -> Policies {
        let mut p = reference();
        p.insert(Policy::from_toml_str(text, Path::new("test.toml")).unwrap())
            .unwrap();
        p
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    /// Example 1 of estimate.md, with changes.
    fn example(changes: Value) -> Value {
        let mut v = json!({
            "policy": "reference", "visit": "inpatient", "hospital_level": 3,
            "filing_type": "long_term_resident", "filed": true,
            "total": 20000, "self_pay": 1000, "class_b": 5000,
        });
        for (k, x) in changes.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    fn run(policies: &Policies, v: Value) -> Result<Value, FieldError> {
        let input = EstimateInput::from_json(&v)?;
        estimate(policies, &input).map(|e| serde_json::to_value(e).unwrap())
    }

    fn ok(policies: &Policies, v: Value) -> Value {
        run(policies, v).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error's field for an input (read or estimate).
    fn field(policies: &Policies, v: Value) -> String {
        match run(policies, v) {
            Ok(e) => panic!("expected an error, got {e}"),
            Err(e) => {
                assert!(!e.message.is_empty());
                e.field
            }
        }
    }

    fn bands(e: &Value) -> Vec<(String, Value, String, String, String, String)> {
        e["bands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["lower"].as_str().unwrap().to_string(),
                    b["upper"].clone(),
                    b["portion"].as_str().unwrap().to_string(),
                    b["rate"].as_str().unwrap().to_string(),
                    b["factor"].as_str().unwrap().to_string(),
                    b["amount"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn band(
        l: &str,
        u: Option<&str>,
        p: &str,
        r: &str,
        f: &str,
        a: &str,
    ) -> (String, Value, String, String, String, String) {
        (
            l.into(),
            u.map_or(Value::Null, |u| json!(u)),
            p.into(),
            r.into(),
            f.into(),
            a.into(),
        )
    }

    #[test]
    fn example_1_long_term_resident() {
        let e = ok(&reference(), example(json!({})));
        assert_eq!(e["policy"], "reference");
        assert_eq!(e["class_b_copay"], "500.00");
        assert_eq!(e["self_pay"], "1000.00");
        assert_eq!(e["eligible"], "18500.00");
        assert_eq!(e["deductible_applied"], "900.00");
        assert_eq!(
            bands(&e),
            [
                band(
                    "900.00",
                    Some("3000.00"),
                    "2100.00",
                    "0.88",
                    "1.00",
                    "1848.00"
                ),
                band(
                    "3000.00",
                    Some("5000.00"),
                    "2000.00",
                    "0.90",
                    "1.00",
                    "1800.00"
                ),
                band(
                    "5000.00",
                    Some("10000.00"),
                    "5000.00",
                    "0.92",
                    "1.00",
                    "4600.00"
                ),
                band("10000.00", None, "8500.00", "0.95", "1.00", "8075.00"),
            ]
        );
        assert_eq!(e["fund_pays"], "16323.00");
        assert_eq!(e["patient_pays"], "3677.00");
        assert_eq!(e["cap_applied"], false);
        assert_eq!(e["route"], "direct");
        assert_eq!(e["disclaimer"], DISCLAIMER);
        let rules: Vec<&str> = e["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(
            rules.contains(&"参数来源：001 跨省医保报销比例"),
            "{rules:#?}"
        );
        assert!(
            rules
                .iter()
                .any(|r| r.starts_with("省内异地就医：参保地目录、参保地政策")),
            "{rules:#?}"
        );
        assert!(
            rules.iter().any(
                |r| r.starts_with("跨省异地就医（含上海、浙江、安徽）：就医地目录、参保地政策")
            ),
            "{rules:#?}"
        );
        assert!(
            rules
                .iter()
                .any(|r| r.contains("乙类项目：个人先行自付10%")),
            "{rules:#?}"
        );
        // exactly the fields of estimate.md, plus the policy id
        let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "bands",
                "cap_applied",
                "class_b_copay",
                "deductible_applied",
                "disclaimer",
                "eligible",
                "fund_pays",
                "patient_pays",
                "policy",
                "route",
                "rules",
                "self_pay"
            ]
        );
        let text = serde_json::to_string(
            &estimate(
                &reference(),
                &EstimateInput::from_json(&example(json!({}))).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(text.starts_with(r#"{"policy":"reference","eligible":"18500.00","self_pay":"1000.00","class_b_copay":"500.00","deductible_applied":"900.00","bands":[{"lower":"900.00","upper":"3000.00","portion":"2100.00","rate":"0.88","factor":"1.00","amount":"1848.00"}"#), "{text}");
        assert!(text.contains(r#"{"lower":"10000.00","upper":null,"portion":"8500.00","rate":"0.95","factor":"1.00","amount":"8075.00"}],"cap_applied":false,"fund_pays":"16323.00","patient_pays":"3677.00","route":"direct","rules":["#), "{text}");
    }

    #[test]
    fn example_2_temporary() {
        let e = ok(&reference(), example(json!({"filing_type": "temporary"})));
        assert_eq!(
            bands(&e),
            [
                band(
                    "900.00",
                    Some("3000.00"),
                    "2100.00",
                    "0.88",
                    "0.80",
                    "1478.40"
                ),
                band(
                    "3000.00",
                    Some("5000.00"),
                    "2000.00",
                    "0.90",
                    "0.80",
                    "1440.00"
                ),
                band(
                    "5000.00",
                    Some("10000.00"),
                    "5000.00",
                    "0.92",
                    "0.80",
                    "3680.00"
                ),
                band("10000.00", None, "8500.00", "0.95", "0.80", "6460.00"),
            ]
        );
        assert_eq!(e["fund_pays"], "13058.40");
        assert_eq!(e["patient_pays"], "6941.60");
        assert_eq!(e["route"], "direct");
        let rules = e["rules"].to_string();
        assert!(
            rules.contains("其他临时外出就医：按原结付比例的80%结付"),
            "{rules}"
        );
    }

    #[test]
    fn example_3_second_admission() {
        let e = ok(&reference(), example(json!({"admissions_before": 1})));
        assert_eq!(e["deductible_applied"], "450.00");
        assert_eq!(
            bands(&e)[0],
            band(
                "450.00",
                Some("3000.00"),
                "2550.00",
                "0.88",
                "1.00",
                "2244.00"
            )
        );
        assert_eq!(e["fund_pays"], "16719.00");
        assert_eq!(e["patient_pays"], "3281.00");
        assert!(
            e["rules"]
                .to_string()
                .contains("本年度第二次住院：起付标准按 50% 计，为 450.00 元")
        );
        // without later_admission_deductible, the factor also applies to the 3rd admission
        let e = ok(&reference(), example(json!({"admissions_before": 4})));
        assert_eq!(e["deductible_applied"], "450.00");
    }

    #[test]
    fn amounts_as_strings_or_numbers() {
        let a = ok(
            &reference(),
            example(json!({"total": "20000.00", "self_pay": "1000", "class_b": 5000.0})),
        );
        let b = ok(&reference(), example(json!({})));
        assert_eq!(a, b);
        let e = ok(
            &reference(),
            example(json!({"total": 20000.5, "self_pay": "0.25", "class_b": "0.05"})),
        );
        // 0.05 × 0.10 = 0.005 → 0.01 (half away from zero)
        assert_eq!(e["class_b_copay"], "0.01");
        assert_eq!(e["eligible"], "20000.24");
        // string forms of the other slots, as dialogs store them; null is absent
        let e = ok(
            &reference(),
            example(
                json!({"hospital_level": "3", "filed": "true", "admissions_before": "0", "emergency": null, "scheme": null}),
            ),
        );
        assert_eq!(e, b);
    }

    #[test]
    fn rounding_is_half_away_from_zero_per_product() {
        // 0.01 × 0.88 = 0.0088 → 0.01
        let e = ok(
            &reference(),
            example(json!({"total": "900.01", "self_pay": 0, "class_b": 0})),
        );
        assert_eq!(
            bands(&e),
            [band(
                "900.00",
                Some("3000.00"),
                "0.01",
                "0.88",
                "1.00",
                "0.01"
            )]
        );
        assert_eq!(e["fund_pays"], "0.01");
        // a midpoint: 0.05 × 0.90 = 0.045 → 0.05 (banker's rounding would give 0.04)
        let e = ok(
            &reference(),
            example(json!({"total": "3000.05", "self_pay": 0, "class_b": 0})),
        );
        assert_eq!(
            bands(&e)[1],
            band("3000.00", Some("5000.00"), "0.05", "0.90", "1.00", "0.05")
        );
        assert_eq!(e["fund_pays"], "1848.05");
        // with the factor in the same product: 0.05 × 0.90 × 0.8 = 0.036 → 0.04
        let e = ok(
            &reference(),
            example(
                json!({"total": "3000.05", "self_pay": 0, "class_b": 0, "filing_type": "temporary"}),
            ),
        );
        assert_eq!(bands(&e)[0].5, "1478.40");
        assert_eq!(bands(&e)[1].5, "0.04");
        // the class-B copay is rounded before it is subtracted: 0.05 × 0.10 = 0.005 → 0.01
        let e = ok(
            &reference(),
            example(json!({"total": "925", "self_pay": 0, "class_b": "0.05"})),
        );
        assert_eq!(e["class_b_copay"], "0.01");
        assert_eq!(e["eligible"], "924.99");
        assert_eq!(bands(&e)[0].5, "21.99"); // 24.99 × 0.88 = 21.9912
        // the reduced deductible is rounded too: 900.01 × 0.5 = 450.005 → 450.01
        let p = with(
            "id = \"odd\"\nname = \"x\"\neffective = \"x\"\nsources = [\"x\"]\n[inpatient]\n\
             deductible = \"900.01\"\nsubsequent_admission_factor = \"0.5\"\n\
             bands = [{ rate = \"0.5\" }]\nannual_cap = \"100000\"\n",
        );
        let v = json!({
            "policy": "odd", "visit": "inpatient", "hospital_level": 1, "filing_type": "referral",
            "filed": true, "total": "1000.01", "admissions_before": 1,
        });
        let e = ok(&p, v);
        assert_eq!(e["deductible_applied"], "450.01");
        // 550.00 × 0.5 = 275.00
        assert_eq!(e["fund_pays"], "275.00");
    }

    #[test]
    fn below_the_deductible_nothing_is_paid() {
        let e = ok(
            &reference(),
            example(json!({"total": 800, "self_pay": 0, "class_b": 0})),
        );
        assert_eq!(e["eligible"], "800.00");
        assert_eq!(e["deductible_applied"], "800.00");
        assert_eq!(e["bands"], json!([]));
        assert_eq!(e["fund_pays"], "0.00");
        assert_eq!(e["patient_pays"], "800.00");
        let e = ok(
            &reference(),
            example(json!({"total": 0, "self_pay": 0, "class_b": 0})),
        );
        assert_eq!(e["fund_pays"], "0.00");
        assert_eq!(e["patient_pays"], "0.00");
    }

    #[test]
    fn annual_cap_uses_fund_paid_this_year() {
        let e = ok(
            &reference(),
            example(json!({"fund_paid_this_year": "390000"})),
        );
        assert_eq!(e["cap_applied"], true);
        assert_eq!(e["fund_pays"], "10000.00");
        assert_eq!(e["patient_pays"], "10000.00");
        assert!(e["rules"].to_string().contains("本次按剩余额度封顶"));
        let e = ok(
            &reference(),
            example(json!({"fund_paid_this_year": "450000"})),
        );
        assert_eq!(e["cap_applied"], true);
        assert_eq!(e["fund_pays"], "0.00");
        assert_eq!(e["patient_pays"], "20000.00");
        let e = ok(
            &reference(),
            example(json!({"fund_paid_this_year": "383677"})),
        );
        assert_eq!(e["cap_applied"], false);
        assert_eq!(e["fund_pays"], "16323.00");
    }

    #[test]
    fn emergency_settles_directly() {
        let e = ok(
            &reference(),
            example(json!({"filing_type": "none", "filed": false, "emergency": true})),
        );
        assert_eq!(e["route"], "direct");
        assert_eq!(e["fund_pays"], "16323.00");
        assert!(e["rules"].to_string().contains("急诊抢救：无论是否备案"));
        // `filed` defaults to false without a filing
        let e = ok(
            &reference(),
            json!({
                "policy": "reference", "visit": "inpatient", "hospital_level": 3,
                "filing_type": "none", "emergency": true, "total": 20000, "self_pay": 1000, "class_b": 5000
            }),
        );
        assert_eq!(e["route"], "direct");
    }

    #[test]
    fn unfiled_without_factor_refuses() {
        let err = run(&reference(), example(json!({"filed": false}))).unwrap_err();
        assert_eq!(err.field, "filed");
        assert!(err.message.contains("没有收录未备案"), "{}", err.message);
        assert_eq!(
            field(
                &reference(),
                example(json!({"filing_type": "none", "filed": false}))
            ),
            "filed"
        );
        assert_eq!(
            field(
                &reference(),
                example(json!({"filing_type": "temporary", "filed": false}))
            ),
            "filed"
        );
    }

    const PER_PERSON: &str = r#"
id = "city"
name = "示例市"
effective = "2024"
sources = ["测试来源"]

[inpatient]
annual_cap = "350000"
subsequent_admission_factor = "0.5"
later_admission_deductible = "100"
bands_basis = "cumulative"

[inpatient.employee.working]
deductible = { 1 = "300", 2 = "600", 3 = "800" }
bands = [{ upper = "40000", rate = "0.90" }, { rate = "0.95" }]

[inpatient.employee.retired]
verified = false
deductible = { 1 = "200", 2 = "400", 3 = "600" }
bands = [{ rate = "0.95" }]

[inpatient.resident]
bands = [{ upper = "40000", rate = "0.75" }, { upper = "100000", rate = "0.80" }, { rate = "0.90" }]

[inpatient.resident.student]
deductible = "500"

[cross_region]
temporary_factor = "0.8"
unfiled_factor = "0.7"
unfiled_source = "测试"
unverified = ["unfiled_factor"]
"#;

    fn city(changes: Value) -> Value {
        let mut v = json!({
            "policy": "city", "visit": "inpatient", "hospital_level": 3,
            "filing_type": "long_term_resident", "filed": true, "total": 20000,
            "scheme": "employee", "employment": "working",
        });
        for (k, x) in changes.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn per_person_selection() {
        let p = with(PER_PERSON);
        // working: deductible 800; (800, 20000] at 90% = 17280.00
        let e = ok(&p, city(json!({})));
        assert_eq!(e["deductible_applied"], "800.00");
        assert_eq!(e["fund_pays"], "17280.00");
        assert_eq!(e["disclaimer"], DISCLAIMER);
        assert!(e["rules"].to_string().contains("参数组：职工医保·在职"));
        // no class-B rate in this policy and class_b = 0: goes ahead, says so
        assert!(e["rules"].to_string().contains("未计入乙类先行自付"));
        // retired: deductible 600; 19400 × 0.95 = 18430.00; unverified
        let e = ok(&p, city(json!({"employment": "retired"})));
        assert_eq!(e["fund_pays"], "18430.00");
        assert_eq!(e["disclaimer"], format!("{DISCLAIMER}{UNVERIFIED_NOTE}"));
        assert!(
            e["rules"]
                .to_string()
                .contains("尚未与官方文件核对：起付标准、分段结付比例")
        );
        // student: flat 500 at any level; 19500 × 0.75 = 14625.00
        let e = ok(
            &p,
            city(
                json!({"scheme": "resident", "category": "student", "employment": null, "hospital_level": 1}),
            ),
        );
        assert_eq!(e["deductible_applied"], "500.00");
        assert_eq!(e["fund_pays"], "14625.00");
        // missing slots name the slot needed
        assert_eq!(field(&p, city(json!({"scheme": null}))), "scheme");
        assert_eq!(field(&p, city(json!({"employment": null}))), "employment");
        assert_eq!(
            field(&p, city(json!({"scheme": "resident", "employment": null}))),
            "category"
        );
        // a person the policy does not cover
        let err = run(&p, city(json!({"scheme": "resident", "category": "adult"}))).unwrap_err();
        assert_eq!(err.field, "category");
        assert!(err.message.contains("其他居民"), "{}", err.message);
        // a flat policy ignores the person slots
        let e = ok(
            &p,
            example(json!({"scheme": "resident", "category": "adult"})),
        );
        assert_eq!(e["fund_pays"], "16323.00");
    }

    #[test]
    fn later_admission_deductible() {
        let p = with(PER_PERSON);
        let e = ok(&p, city(json!({"admissions_before": 1})));
        assert_eq!(e["deductible_applied"], "400.00");
        let e = ok(&p, city(json!({"admissions_before": 2})));
        assert_eq!(e["deductible_applied"], "100.00");
        assert_eq!(e["fund_pays"], "17910.00"); // 19900 × 0.90
        assert!(
            e["rules"]
                .to_string()
                .contains("第三次及以后住院：起付标准为 100.00 元")
        );
        let e = ok(&p, city(json!({"admissions_before": 7})));
        assert_eq!(e["deductible_applied"], "100.00");
        // outpatient visits do not count admissions (and this policy has no outpatient section)
        assert_eq!(
            field(
                &p,
                city(json!({"visit": "outpatient", "admissions_before": 2}))
            ),
            "visit"
        );
    }

    #[test]
    fn cumulative_bands() {
        let p = with(PER_PERSON);
        // C = 30000: paid range (30800, 50000]: 9200 × 0.90 + 10000 × 0.95 = 8280 + 9500
        let e = ok(&p, city(json!({"cumulative_eligible_before": "30000"})));
        assert_eq!(
            bands(&e),
            [
                band(
                    "30800.00",
                    Some("40000.00"),
                    "9200.00",
                    "0.90",
                    "1.00",
                    "8280.00"
                ),
                band("40000.00", None, "10000.00", "0.95", "1.00", "9500.00"),
            ]
        );
        assert_eq!(e["fund_pays"], "17780.00");
        assert_eq!(e["patient_pays"], "2220.00");
        assert!(e["rules"].to_string().contains("此前累计 30000.00 元"));
        // an admission-basis policy ignores the cumulative amount
        let e = ok(&p, example(json!({"cumulative_eligible_before": "30000"})));
        assert_eq!(e["fund_pays"], "16323.00");
    }

    #[test]
    fn cross_region_factors() {
        let p = with(PER_PERSON);
        let e = ok(&p, city(json!({"filing_type": "none", "filed": false})));
        assert_eq!(e["route"], "manual");
        assert_eq!(e["fund_pays"], "12096.00"); // 19200 × 0.90 × 0.7
        assert_eq!(bands(&e)[0].4, "0.70");
        assert_eq!(e["disclaimer"], format!("{DISCLAIMER}{UNVERIFIED_NOTE}"));
        assert!(e["rules"].to_string().contains(
            "未备案（非急诊抢救）：按原结付比例的70%结付，需先垫付、再回参保地手工报销（测试）"
        ));
        // unfiled takes precedence over temporary
        let e = ok(
            &p,
            city(json!({"filing_type": "temporary", "filed": false})),
        );
        assert_eq!(e["fund_pays"], "12096.00");
        // temporary, filed: 0.8
        let e = ok(&p, city(json!({"filing_type": "temporary"})));
        assert_eq!(e["fund_pays"], "13824.00");
        assert_eq!(e["disclaimer"], DISCLAIMER);
        // referral and the other filed types: factor 1
        for t in ["resettled_retiree", "posted_worker", "referral"] {
            assert_eq!(
                ok(&p, city(json!({"filing_type": t})))["fund_pays"],
                "17280.00"
            );
        }
    }

    #[test]
    fn missing_parameters_refuse() {
        let text = r#"
id = "thin"
name = "简略市"
effective = "2024"
sources = ["x"]
note = "门诊参数待补充。"
[inpatient]
deductible = { 3 = "800" }
bands = [{ rate = "0.9" }]
annual_cap = "100000"
"#;
        let p = with(text);
        let base = json!({
            "policy": "thin", "visit": "inpatient", "hospital_level": 3,
            "filing_type": "referral", "filed": true, "total": 10000,
        });
        assert_eq!(ok(&p, base.clone())["fund_pays"], "8280.00");
        let mut v = base.clone();
        v["hospital_level"] = json!(2);
        assert_eq!(field(&p, v), "hospital_level");
        let mut v = base.clone();
        v["admissions_before"] = json!(1);
        assert_eq!(field(&p, v), "admissions_before");
        let mut v = base.clone();
        v["class_b"] = json!("100");
        let err = run(&p, v).unwrap_err();
        assert_eq!(err.field, "class_b");
        assert!(err.message.contains("乙类"), "{}", err.message);
        let mut v = base.clone();
        v["filing_type"] = json!("temporary");
        assert_eq!(field(&p, v), "filing_type");
        let mut v = base.clone();
        v["visit"] = json!("outpatient");
        let err = run(&p, v).unwrap_err();
        assert_eq!(err.field, "visit");
        assert!(err.message.contains("门诊参数待补充"), "{}", err.message);
        // the reference policy has no outpatient section either
        assert_eq!(
            field(&reference(), example(json!({"visit": "outpatient"}))),
            "visit"
        );
    }

    #[test]
    fn invalid_inputs_name_their_field() {
        let r = reference();
        let cases: Vec<(Value, &str)> = vec![
            (example(json!({"total": -1})), "total"),
            (example(json!({"self_pay": "-0.01"})), "self_pay"),
            (example(json!({"class_b": "1.005"})), "class_b"),
            (example(json!({"total": 20000.001})), "total"),
            (example(json!({"total": "10000000.01"})), "total"),
            (example(json!({"total": 1e30})), "total"),
            (example(json!({"total": -1e30})), "total"),
            (
                example(json!({"fund_paid_this_year": "10000001"})),
                "fund_paid_this_year",
            ),
            (
                example(json!({"cumulative_eligible_before": "-5"})),
                "cumulative_eligible_before",
            ),
            (example(json!({"total": "两万"})), "total"),
            (example(json!({"total": "1e5"})), "total"),
            (example(json!({"total": true})), "total"),
            (example(json!({"total": null})), "total"),
            (example(json!({"self_pay": 15001})), "class_b"),
            (example(json!({"self_pay": 20001})), "self_pay"),
            (example(json!({"class_b": 19001})), "class_b"),
            (example(json!({"visit": "emergency"})), "visit"),
            (example(json!({"visit": null})), "visit"),
            (example(json!({"hospital_level": 4})), "hospital_level"),
            (example(json!({"hospital_level": 0})), "hospital_level"),
            (example(json!({"hospital_level": "三级"})), "hospital_level"),
            (example(json!({"hospital_level": 2.5})), "hospital_level"),
            (example(json!({"filing_type": "holiday"})), "filing_type"),
            (example(json!({"filing_type": null})), "filing_type"),
            (example(json!({"filed": "yes"})), "filed"),
            (example(json!({"filed": null})), "filed"),
            (
                example(json!({"filing_type": "none", "filed": true})),
                "filed",
            ),
            (example(json!({"emergency": 1})), "emergency"),
            (
                example(json!({"admissions_before": -1})),
                "admissions_before",
            ),
            (
                example(json!({"admissions_before": 1.5})),
                "admissions_before",
            ),
            (
                example(json!({"admissions_before": 1000})),
                "admissions_before",
            ),
            (example(json!({"scheme": "civil_servant"})), "scheme"),
            (example(json!({"employment": "student"})), "employment"),
            (example(json!({"category": "elderly"})), "category"),
            (example(json!({"care_location": "mars"})), "care_location"),
            (example(json!({"policy": "beijing"})), "policy"),
            (example(json!({"policy": ""})), "policy"),
            (example(json!({"policy": 7})), "policy"),
            (example(json!({"policy": null})), "policy"),
            (
                example(json!({"insured_region": "suzhou"})),
                "insured_region",
            ),
            (example(json!({"totl": 5})), "totl"),
            (json!([1, 2]), "input"),
            (json!("20000"), "input"),
        ];
        for (v, want) in cases {
            let got = run(&r, v.clone());
            match got {
                Ok(_) => panic!("{v} should fail on {want}"),
                Err(e) => {
                    assert_eq!(e.field, want, "{v}: {}", e.message);
                    assert!(!e.message.is_ascii(), "message in Chinese: {}", e.message);
                }
            }
        }
    }

    #[test]
    fn error_messages_say_what_to_type() {
        let r = reference();
        let msg = |v| run(&r, v).unwrap_err().message;
        assert!(msg(example(json!({"total": -1}))).contains("不能是负数"));
        assert!(msg(example(json!({"total": "1.005"}))).contains("两位小数"));
        assert!(msg(example(json!({"total": "10000001"}))).contains("一千万"));
        // numbers Decimal cannot hold, tiny or huge, however written
        for tiny in [
            "9.999e-320",
            "1e-30",
            "0.000000000000000000000000000001",
            "5E-300",
        ] {
            let v: Value = serde_json::from_str(&format!("{{\"total\": {tiny}}}")).unwrap();
            let m = msg(example(v));
            assert!(m.contains("两位小数"), "{tiny}: {m}");
        }
        for huge in ["1e30", "1.5E+40", "123456789012345678901234567890"] {
            let v: Value = serde_json::from_str(&format!("{{\"total\": {huge}}}")).unwrap();
            assert!(msg(example(v)).contains("一千万"), "{huge}");
        }
        let v: Value = serde_json::from_str("{\"total\": -1e-300}").unwrap();
        assert!(msg(example(v)).contains("不能是负数"));
        let zero: Value =
            serde_json::from_str("{\"total\": 0e-400, \"self_pay\": 0, \"class_b\": 0}").unwrap();
        assert!(run(&r, example(zero)).is_ok());
        assert!(msg(example(json!({"hospital_level": 9}))).contains("1（一级及基层医院）"));
        assert!(msg(example(json!({"visit": "x"}))).contains("\"inpatient\"（住院）"));
        assert!(msg(example(json!({"totl": 1}))).contains("不认识的字段“totl”"));
        let m = msg(example(json!({"policy": "beijing"})));
        assert!(m.contains("beijing") && m.contains("reference"), "{m}");
        assert!(msg(example(json!({"self_pay": 20001}))).contains("不能超过医疗总费用"));
    }

    #[test]
    fn insured_region_and_care_location() {
        let r = reference();
        let mut v = example(json!({"care_location": "other_province"}));
        let policy = v.as_object_mut().unwrap().remove("policy").unwrap();
        v["insured_region"] = policy;
        let e = ok(&r, v);
        assert_eq!(e["fund_pays"], "16323.00");
        let rules = e["rules"].to_string();
        assert!(
            rules.contains("跨省异地就医") && !rules.contains("省内异地就医"),
            "{rules}"
        );
        let e = ok(
            &r,
            example(json!({"care_location": "in_province", "insured_region": "reference"})),
        );
        let rules = e["rules"].to_string();
        assert!(
            rules.contains("省内异地就医") && !rules.contains("跨省异地就医"),
            "{rules}"
        );
    }

    #[test]
    fn built_inputs_are_validated_too() {
        let mut input = EstimateInput::from_json(&example(json!({}))).unwrap();
        input.self_pay = d("30000");
        assert_eq!(
            estimate(&reference(), &input).unwrap_err().field,
            "self_pay"
        );
        input.self_pay = d("0");
        input.hospital_level = 7;
        assert_eq!(
            estimate(&reference(), &input).unwrap_err().field,
            "hospital_level"
        );
    }

    #[test]
    fn shipped_suzhou_and_zhangjiagang() {
        let p = shipped();
        let base = json!({
            "policy": "suzhou", "visit": "inpatient", "hospital_level": 3,
            "filing_type": "long_term_resident", "filed": true, "total": "50000",
            "scheme": "employee", "employment": "working",
        });
        // deductible 800; (800, 40000] × 0.90 = 35280 + (40000, 50000] × 0.95 = 9500
        let e = ok(&p, base.clone());
        assert_eq!(e["deductible_applied"], "800.00");
        assert_eq!(e["fund_pays"], "44780.00");
        assert_eq!(e["patient_pays"], "5220.00");
        assert_eq!(e["disclaimer"], format!("{DISCLAIMER}{UNVERIFIED_NOTE}"));
        let rules = e["rules"].to_string();
        assert!(
            rules.contains("jiusongjiankang") && rules.contains("未计入乙类先行自付"),
            "{rules}"
        );
        // temporary: 0.8 (seed 001)
        let mut v = base.clone();
        v["filing_type"] = json!("temporary");
        let e = ok(&p, v);
        assert_eq!(e["fund_pays"], "35824.00");
        assert!(
            e["rules"]
                .to_string()
                .contains("其他临时外出就医：按原结付比例的80%结付（001 其他临时外出就医人员）")
        );
        // resident student, 3rd admission: deductible 100
        let e = ok(
            &p,
            json!({
                "policy": "suzhou", "visit": "inpatient", "hospital_level": 2,
                "filing_type": "referral", "filed": true, "total": 10100,
                "scheme": "resident", "category": "student", "admissions_before": 2,
            }),
        );
        assert_eq!(e["deductible_applied"], "100.00");
        assert_eq!(e["fund_pays"], "7500.00");
        // refusals: class-B items, residents' outpatient, a person slot missing
        let mut v = base.clone();
        v["class_b"] = json!("1000");
        assert_eq!(field(&p, v), "class_b");
        let mut v = base.clone();
        v["visit"] = json!("outpatient");
        v["scheme"] = json!("resident");
        v["category"] = json!("adult");
        let err = run(&p, v).unwrap_err();
        assert_eq!(err.field, "scheme");
        assert!(
            err.message.contains("城乡居民医保") && err.message.contains("门诊统筹的起付标准"),
            "{}",
            err.message
        );
        let mut v = base.clone();
        v["employment"] = Value::Null;
        assert_eq!(field(&p, v), "employment");
    }

    #[test]
    fn zhangjiagang_estimates_with_the_suzhou_table_flagged() {
        let p = shipped();
        let base = json!({
            "policy": "zhangjiagang", "visit": "inpatient", "hospital_level": 3,
            "filing_type": "long_term_resident", "filed": true, "total": "50000",
            "scheme": "employee", "employment": "working",
        });
        let e = ok(&p, base.clone());
        assert_eq!(e["policy"], "zhangjiagang");
        assert_eq!(e["fund_pays"], "44780.00");
        assert_eq!(e["patient_pays"], "5220.00");
        assert_eq!(e["disclaimer"], format!("{DISCLAIMER}{UNVERIFIED_NOTE}"));
        let rules: Vec<String> = serde_json::from_value(e["rules"].clone()).unwrap();
        // the one plain sentence comes right after the policy line (chat shows three rules)
        assert!(
            rules[1].contains("按苏州大市统一的医保待遇表估算") && rules[1].contains("0512-12333"),
            "{rules:#?}"
        );
        assert!(
            rules
                .iter()
                .any(|r| r.contains("policy-zhangjiagang.md §1 1.5")),
            "{rules:#?}"
        );
        // the same result as Suzhou for every person and visit we can estimate
        for (scheme, who, visit, level, c) in [
            ("employee", ("employment", "working"), "inpatient", 3, "0"),
            (
                "employee",
                ("employment", "retired"),
                "inpatient",
                2,
                "30000",
            ),
            ("resident", ("category", "adult"), "inpatient", 1, "0"),
            (
                "resident",
                ("category", "student"),
                "inpatient",
                3,
                "120000",
            ),
            ("employee", ("employment", "working"), "outpatient", 1, "0"),
            (
                "employee",
                ("employment", "retired"),
                "outpatient",
                3,
                "250",
            ),
        ] {
            for filing in ["long_term_resident", "temporary"] {
                let v = json!({
                    "policy": "zhangjiagang", "visit": visit, "hospital_level": level,
                    "filing_type": filing, "filed": true, "total": "60000.55",
                    "scheme": scheme, who.0: who.1, "cumulative_eligible_before": c,
                    "admissions_before": 1,
                });
                let z = ok(&p, v.clone());
                let mut s = v.clone();
                s["policy"] = json!("suzhou");
                let s = ok(&p, s);
                for k in [
                    "eligible",
                    "deductible_applied",
                    "bands",
                    "fund_pays",
                    "patient_pays",
                ] {
                    assert_eq!(z[k], s[k], "{k} for {v}");
                }
            }
        }
        // every figure is flagged, the temporary factor included
        let mut v = base.clone();
        v["filing_type"] = json!("temporary");
        let e = ok(&p, v);
        assert_eq!(e["fund_pays"], "35824.00");
        assert!(
            e["rules"].to_string().contains("临时外出就医结付比例"),
            "{}",
            e["rules"]
        );
    }

    #[test]
    fn suzhou_employee_outpatient_has_a_yearly_deductible_and_level_ratios() {
        let p = shipped();
        let v = |employment: &str, level: u8, total: &str, before: &str| {
            json!({
                "policy": "suzhou", "visit": "outpatient", "hospital_level": level,
                "filing_type": "long_term_resident", "filed": true, "total": total,
                "scheme": "employee", "employment": employment,
                "cumulative_eligible_before": before,
            })
        };
        // working, 三级: deductible 600; 2400 × 60% = 1440.00
        let e = ok(&p, v("working", 3, "3000", "0"));
        assert_eq!(e["deductible_applied"], "600.00");
        assert_eq!(e["fund_pays"], "1440.00");
        assert_eq!(bands(&e)[0].3, "0.60");
        // 一级 80%, 二级 75%
        assert_eq!(ok(&p, v("working", 1, "3000", "0"))["fund_pays"], "1920.00");
        assert_eq!(ok(&p, v("working", 2, "3000", "0"))["fund_pays"], "1800.00");
        // retired: 400, 90/85/70
        assert_eq!(ok(&p, v("retired", 2, "3000", "0"))["fund_pays"], "2210.00");
        // yearly deductible: 450 of eligible cost before leaves 150 to pay; 2850 × 60%
        let e = ok(&p, v("working", 3, "3000", "450"));
        assert_eq!(e["deductible_applied"], "150.00");
        assert_eq!(e["fund_pays"], "1710.00");
        assert!(
            e["rules"]
                .to_string()
                .contains("起付标准按年度计算：本年度此前政策范围内门诊费用 450.00 元")
        );
        // already past it: nothing more to pay first
        assert_eq!(
            ok(&p, v("working", 3, "3000", "5000"))["deductible_applied"],
            "0.00"
        );
        // the yearly cap of 13,000 with fund_paid_this_year
        let mut x = v("retired", 1, "20000", "0");
        x["fund_paid_this_year"] = json!("12000");
        let e = ok(&p, x);
        assert_eq!(e["cap_applied"], true);
        assert_eq!(e["fund_pays"], "1000.00");
        // the 80% rule for temporary trips: 2400 × 60% × 80%
        let mut x = v("working", 3, "3000", "0");
        x["filing_type"] = json!("temporary");
        assert_eq!(ok(&p, x)["fund_pays"], "1152.00");
        // admissions do not change an outpatient deductible
        let mut x = v("working", 3, "3000", "0");
        x["admissions_before"] = json!(2);
        assert_eq!(ok(&p, x)["deductible_applied"], "600.00");
        assert_eq!(
            ok(&p, v("working", 3, "3000", "0"))["disclaimer"],
            format!("{DISCLAIMER}{UNVERIFIED_NOTE}")
        );
    }

    /// A valid inpatient input for the reference policy (amounts in cents).
    fn valid_input() -> impl Strategy<Value = EstimateInput> {
        let filing = prop_oneof![
            Just(FilingType::ResettledRetiree),
            Just(FilingType::LongTermResident),
            Just(FilingType::PostedWorker),
            Just(FilingType::Referral),
            Just(FilingType::Temporary),
            Just(FilingType::None),
        ];
        (
            0u64..=1_000_000_000,
            0u64..=1_000,
            0u64..=1_000,
            filing,
            any::<bool>(),
            1u8..=3,
            0u32..=5,
            0u64..=50_000_000,
        )
            .prop_map(
                |(total, sp, cb, filing_type, flag, level, admissions, paid)| {
                    // self_pay and class_b as shares (per mille) of what is left
                    let self_pay = total * sp / 1000;
                    let class_b = (total - self_pay) * cb / 1000;
                    // reference has no unfiled factor: keep inputs valid (filed, or an emergency)
                    let (filed, emergency) = match filing_type {
                        FilingType::None => (false, true),
                        _ => (true, flag),
                    };
                    EstimateInput {
                        policy: "reference".into(),
                        visit: Visit::Inpatient,
                        hospital_level: level,
                        filing_type,
                        filed,
                        emergency,
                        total: Decimal::new(total as i64, 2),
                        self_pay: Decimal::new(self_pay as i64, 2),
                        class_b: Decimal::new(class_b as i64, 2),
                        admissions_before: admissions,
                        fund_paid_this_year: Decimal::new(paid as i64, 2),
                        cumulative_eligible_before: Decimal::ZERO,
                        scheme: None,
                        employment: None,
                        category: None,
                        care_location: None,
                    }
                },
            )
    }

    /// A valid input for the shipped Suzhou/张家港 policies: every person and visit they
    /// estimate, earlier care this year, any filing (the unfiled factor is known).
    fn shipped_input() -> impl Strategy<Value = EstimateInput> {
        let person = prop_oneof![
            Just((Scheme::Employee, Some(Employment::Working), None, true)),
            Just((Scheme::Employee, Some(Employment::Retired), None, true)),
            Just((Scheme::Resident, None, Some(Category::Adult), false)),
            Just((Scheme::Resident, None, Some(Category::Student), false)),
        ];
        (
            person,
            any::<bool>(),
            0u64..=200_000_000,
            0u64..=300,
            1u8..=3,
            prop::sample::select(FilingType::ALL),
            any::<bool>(),
            0u32..=4,
            0u64..=60_000_000,
            0u64..=40_000_000,
        )
            .prop_map(
                |(
                    (scheme, employment, category, outpatient_ok),
                    outpatient,
                    total,
                    sp,
                    level,
                    filing_type,
                    flag,
                    admissions,
                    before,
                    paid,
                )| {
                    let self_pay = total * sp / 1000;
                    EstimateInput {
                        policy: "suzhou".into(),
                        visit: if outpatient && outpatient_ok {
                            Visit::Outpatient
                        } else {
                            Visit::Inpatient
                        },
                        hospital_level: level,
                        filing_type,
                        filed: filing_type != FilingType::None && flag,
                        emergency: !flag,
                        total: Decimal::new(total as i64, 2),
                        self_pay: Decimal::new(self_pay as i64, 2),
                        class_b: Decimal::ZERO,
                        admissions_before: admissions,
                        fund_paid_this_year: Decimal::new(paid as i64, 2),
                        cumulative_eligible_before: Decimal::new(before as i64, 2),
                        scheme: Some(scheme),
                        employment,
                        category,
                        care_location: None,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn shipped_policies_add_up_to_the_fen(input in shipped_input(), extra in 0u64..=10_000_000) {
            let p = shipped();
            let e = estimate(&p, &input).unwrap();
            prop_assert_eq!(e.fund_pays + e.patient_pays, input.total);
            prop_assert!(e.fund_pays >= Decimal::ZERO && e.fund_pays <= e.eligible);
            prop_assert!(e.deductible_applied <= e.eligible);
            for b in &e.bands {
                prop_assert_eq!(b.amount.scale(), 2);
                prop_assert!(b.portion > Decimal::ZERO);
            }
            let sum: Decimal = e.bands.iter().map(|b| b.amount).sum();
            prop_assert_eq!(e.fund_pays, sum.min(e.fund_pays));
            // 张家港 uses the same table: the same figures
            let mut z = input.clone();
            z.policy = "zhangjiagang".into();
            let ez = estimate(&p, &z).unwrap();
            prop_assert_eq!(&ez.bands, &e.bands);
            prop_assert_eq!(ez.fund_pays, e.fund_pays);
            // more cost never pays less
            let mut more = input.clone();
            more.total = (input.total + Decimal::new(extra as i64, 2)).min(MAX_AMOUNT);
            prop_assert!(estimate(&p, &more).unwrap().fund_pays >= e.fund_pays);
            // earlier care this year never makes this admission's deductible larger
            let mut later = input.clone();
            later.cumulative_eligible_before += Decimal::new(100_000, 2);
            later.admissions_before += 1;
            let el = estimate(&p, &later).unwrap();
            prop_assert!(el.deductible_applied <= e.deductible_applied);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn fund_and_patient_add_up(input in valid_input()) {
            let p = reference();
            let e = estimate(&p, &input).unwrap();
            prop_assert_eq!(e.fund_pays + e.patient_pays, input.total);
            prop_assert!(e.patient_pays >= Decimal::ZERO);
            let cap = p.get("reference").unwrap().inpatient.as_ref().unwrap().sets()[0].annual_cap;
            let remaining = (cap - input.fund_paid_this_year).max(Decimal::ZERO);
            prop_assert!(e.fund_pays >= Decimal::ZERO);
            prop_assert!(e.fund_pays <= remaining);
            prop_assert!(e.fund_pays <= e.eligible);
            for b in &e.bands {
                prop_assert!(b.amount >= Decimal::ZERO);
                prop_assert!(b.portion > Decimal::ZERO);
                prop_assert_eq!(b.amount.scale(), 2);
            }
            // the JSON form has two places everywhere
            let v = serde_json::to_value(&e).unwrap();
            for k in ["eligible", "self_pay", "class_b_copay", "deductible_applied", "fund_pays", "patient_pays"] {
                let s = v[k].as_str().unwrap();
                prop_assert_eq!(s.split_once('.').map(|(_, f)| f.len()), Some(2), "{} = {}", k, s);
            }
        }

        #[test]
        fn fund_is_monotonic_in_total(input in valid_input(), extra in 0u64..=100_000_000) {
            let p = reference();
            let mut more = input.clone();
            more.total = (input.total + Decimal::new(extra as i64, 2)).min(MAX_AMOUNT);
            let a = estimate(&p, &input).unwrap();
            let b = estimate(&p, &more).unwrap();
            prop_assert!(b.fund_pays >= a.fund_pays, "{} < {}", b.fund_pays, a.fund_pays);
        }

        #[test]
        fn json_round_trip_of_amounts(cents in 0u64..=1_000_000_000) {
            let amount = Decimal::new(cents as i64, 2);
            let as_string = example(json!({"total": amount.to_string(), "self_pay": 0, "class_b": 0}));
            let as_number = example(json!({"total": serde_json::Number::from_str(&amount.to_string()).unwrap(), "self_pay": 0, "class_b": 0}));
            let a = EstimateInput::from_json(&as_string).unwrap();
            let b = EstimateInput::from_json(&as_number).unwrap();
            prop_assert_eq!(a.total, amount);
            prop_assert_eq!(b.total, amount);
        }
    }
}
