//! Reimbursement policies: the parameters the estimate engine ([`super::estimate`]) computes
//! with, read from `knowledge/policies/*.toml` (plus, optionally, one extra file given with
//! `--policy FILE`).
//!
//! Files are read in two stages, like the rest of the knowledge folder: serde reads the raw
//! shape (the `raw` structs, `deny_unknown_fields`), then validation turns it into a typed
//! [`Policy`] or a list of [`PolicyError`]s, each naming the file and the field
//! (`knowledge/policies/suzhou.toml: field inpatient.employee.retired.bands[2].rate: ...`).
//! Nested tables are deserialized one at a time so that every error knows its path.
//!
//! # Format
//!
//! ```toml
//! id = "suzhou"                 # lowercase a-z, 0-9, '-' or '_'; in knowledge/policies/ also the file name
//! name = "苏州市"                # shown to users
//! effective = "2024"            # free text: when the figures apply
//! sources = ["001 结算标准"]      # at least one; shown in the estimate's `rules`
//! note = "…"                    # optional, Chinese: shown when the policy refuses an estimate
//! assumption = "…"              # optional, Chinese: one sentence every estimate shows (e.g. "assumed
//!                               # to follow another region's table; the hotline confirms")
//! verified = false              # optional: every figure in the file comes from secondary sources
//! unverified = ["annual_cap"]   # optional: these parameters, wherever written, are secondary
//!
//! [inpatient]                   # one section per visit kind: `inpatient`, `outpatient`
//! deductible = { 1 = "300", 2 = "600", 3 = "900" }   # by hospital level; or one amount for all
//! subsequent_admission_factor = "0.5"   # deductible factor for the 2nd admission of the year
//! later_admission_deductible = "100"    # fixed deductible from the 3rd admission on
//! bands = [{ upper = "3000", rate = "0.88" }, { rate = "0.95" }]   # (lower, upper] of eligible cost
//! bands_basis = "cumulative"            # or "admission" (the default)
//! deductible_basis = "yearly"           # or "admission" (the default): one deductible a year,
//!                                       # reduced by the year's eligible cost before
//! # a band's rate may also differ by hospital level: { rate = { 1 = "0.80", 2 = "0.75", 3 = "0.60" } }
//! class_b_copay = "0.10"                # share of class-B items the patient pays first
//! annual_cap = "400000"                 # the pooled fund's yearly maximum
//! sources = ["…"]                       # optional, any table: sources of the figures written there
//!
//! [inpatient.employee.working]          # parameter sets per person (optional)
//! deductible = { 1 = "300", 2 = "600", 3 = "800" }
//!
//! [cross_region]
//! temporary_factor = "0.8"              # 其他临时外出就医 (filed as `temporary`)
//! temporary_source = "001 其他临时外出就医人员"
//! unfiled_factor = "0.8"                # not filed, not an emergency
//! unfiled_source = "…"
//! ```
//!
//! Person tables: a section may split by `scheme` (`employee`, `resident`); `employee` may split
//! by `employment` (`working`, `retired`) and `resident` by `category` (`student`, `adult`).
//! A table's parameters are defaults for the tables below it; every leaf table must end up with
//! `deductible`, `bands` and `annual_cap`. `verified = false` (or `unverified = [names]`) marks
//! the values written in that table and in the tables below it as coming from secondary
//! sources; the estimate then says so.
//!
//! Amounts and rates are decimal strings (`"0.88"`) or integers; TOML floats are refused
//! because they would pass through binary floating point.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rust_decimal::Decimal;

/// The largest amount a policy may state (deductibles, caps, band limits).
const MAX_POLICY_AMOUNT: Decimal = Decimal::from_parts(100_000_000, 0, 0, false, 0);

/// Most decimal places a rate or factor may have.
const MAX_RATE_DP: u32 = 6;

/// A problem in a policy file, naming the file and, when known, the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{message}", field_prefix(.field))]
pub struct PolicyError {
    /// The file, as the path it was read from (e.g. `knowledge/policies/suzhou.toml`).
    pub file: String,
    /// The dotted path of the field (e.g. `inpatient.bands[2].rate`), when known.
    pub field: Option<String>,
    pub message: String,
}

fn field_prefix(field: &Option<String>) -> String {
    field
        .as_ref()
        .map(|f| format!("field {f}: "))
        .unwrap_or_default()
}

impl PolicyError {
    fn new(file: &str, field: Option<String>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            file: file.to_string(),
            field,
            message: message.into(),
        }
    }
}

/// The parameters a policy may state; used for `unverified` lists and to name secondary
/// figures in an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param {
    Deductible,
    SubsequentAdmissionFactor,
    LaterAdmissionDeductible,
    Bands,
    BandsBasis,
    ClassBCopay,
    AnnualCap,
    DeductibleBasis,
    TemporaryFactor,
    UnfiledFactor,
}

impl Param {
    const SECTION: [Param; 8] = [
        Param::Deductible,
        Param::SubsequentAdmissionFactor,
        Param::LaterAdmissionDeductible,
        Param::Bands,
        Param::BandsBasis,
        Param::ClassBCopay,
        Param::AnnualCap,
        Param::DeductibleBasis,
    ];
    const CROSS_REGION: [Param; 2] = [Param::TemporaryFactor, Param::UnfiledFactor];

    /// The key in the policy file.
    pub fn key(self) -> &'static str {
        match self {
            Param::Deductible => "deductible",
            Param::SubsequentAdmissionFactor => "subsequent_admission_factor",
            Param::LaterAdmissionDeductible => "later_admission_deductible",
            Param::Bands => "bands",
            Param::BandsBasis => "bands_basis",
            Param::ClassBCopay => "class_b_copay",
            Param::AnnualCap => "annual_cap",
            Param::DeductibleBasis => "deductible_basis",
            Param::TemporaryFactor => "temporary_factor",
            Param::UnfiledFactor => "unfiled_factor",
        }
    }

    /// What users call it.
    pub fn label(self) -> &'static str {
        match self {
            Param::Deductible => "起付标准",
            Param::SubsequentAdmissionFactor => "年内第二次住院起付标准比例",
            Param::LaterAdmissionDeductible => "年内第三次及以后住院起付标准",
            Param::Bands => "分段结付比例",
            Param::BandsBasis => "分段计算方式",
            Param::ClassBCopay => "乙类先行自付比例",
            Param::AnnualCap => "年度最高支付限额",
            Param::DeductibleBasis => "起付标准计算方式",
            Param::TemporaryFactor => "临时外出就医结付比例",
            Param::UnfiledFactor => "未备案异地就医结付比例",
        }
    }

    fn from_key(key: &str) -> Option<Param> {
        Param::SECTION
            .into_iter()
            .chain(Param::CROSS_REGION)
            .find(|p| p.key() == key)
    }
}

/// Whether bands apply to this admission's eligible cost or to the year's cumulative one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandsBasis {
    /// Bands run on this admission's eligible amount (the default).
    Admission,
    /// Bands run on the year's cumulative eligible cost (Suzhou's 年度累计分段结付).
    Cumulative,
}

/// Whether the deductible is paid once per admission (visit) or once a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeductibleBasis {
    /// Every admission (or visit) pays its deductible (the default).
    Admission,
    /// One deductible a year (Suzhou's 门诊共济 年度起付标准): what the year's eligible cost
    /// before this visit already covered is not paid again.
    Yearly,
}

/// A cost band `(lower, upper]` of the eligible amount and the fund's rate in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Band {
    pub lower: Decimal,
    /// `None`: unbounded (the last band).
    pub upper: Option<Decimal>,
    /// The rate; for a band whose rate differs by hospital level, the rate of the highest
    /// level it names (use [`Band::rate_for`]).
    pub rate: Decimal,
    /// Rates by hospital level (1, 2, 3), when the band's rate differs by level; else empty.
    pub rate_by_level: BTreeMap<u8, Decimal>,
}

impl Band {
    /// The band's rate at a hospital level; `None` when it differs by level and this level
    /// is not given.
    pub fn rate_for(&self, level: u8) -> Option<Decimal> {
        if self.rate_by_level.is_empty() {
            Some(self.rate)
        } else {
            self.rate_by_level.get(&level).copied()
        }
    }
}

/// One complete parameter set: what the estimate needs for one kind of person and visit.
#[derive(Debug, Clone)]
pub struct ParamSet {
    /// Where it was defined, e.g. `inpatient.employee.retired`.
    pub path: String,
    /// Deductible by hospital level (1, 2, 3); a missing level makes the estimate refuse.
    pub deductible: BTreeMap<u8, Decimal>,
    pub subsequent_admission_factor: Option<Decimal>,
    pub later_admission_deductible: Option<Decimal>,
    /// Contiguous, from 0; the last is unbounded.
    pub bands: Vec<Band>,
    pub bands_basis: BandsBasis,
    pub deductible_basis: DeductibleBasis,
    /// `None`: not known (the estimate refuses inputs with class-B items).
    pub class_b_copay: Option<Decimal>,
    pub annual_cap: Decimal,
    /// Sources named by the tables on the path (the policy's own are in [`Policy::sources`]).
    pub sources: Vec<String>,
    /// Parameters whose values come from secondary sources.
    pub unverified: BTreeSet<Param>,
}

/// The person slot a [`ParamTree`] splits on; the names are the estimate input's field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonSlot {
    Scheme,
    Employment,
    Category,
}

impl PersonSlot {
    /// The input field (slot) name.
    pub fn field(self) -> &'static str {
        match self {
            PersonSlot::Scheme => "scheme",
            PersonSlot::Employment => "employment",
            PersonSlot::Category => "category",
        }
    }
}

/// A section's parameters: one set for everyone, or sets chosen by person slots.
#[derive(Debug, Clone)]
pub enum ParamTree {
    Set(ParamSet),
    Split {
        slot: PersonSlot,
        branches: BTreeMap<String, ParamTree>,
    },
}

/// Why [`ParamTree::select`] found no parameter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    /// The policy differs by this slot and the input does not give it.
    Missing(PersonSlot),
    /// The policy has no parameters for this value of the slot.
    NotCovered(PersonSlot, String),
}

impl ParamTree {
    /// Picks the parameter set for a person; `value` gives the input's value of a slot.
    pub fn select<'a>(
        &self,
        value: impl Fn(PersonSlot) -> Option<&'a str>,
    ) -> Result<&ParamSet, SelectError> {
        let mut node = self;
        loop {
            match node {
                ParamTree::Set(set) => return Ok(set),
                ParamTree::Split { slot, branches } => {
                    let v = value(*slot).ok_or(SelectError::Missing(*slot))?;
                    node = branches
                        .get(v)
                        .ok_or_else(|| SelectError::NotCovered(*slot, v.to_string()))?;
                }
            }
        }
    }

    /// Every parameter set in the tree.
    pub fn sets(&self) -> Vec<&ParamSet> {
        match self {
            ParamTree::Set(set) => vec![set],
            ParamTree::Split { branches, .. } => branches.values().flat_map(|t| t.sets()).collect(),
        }
    }
}

/// Cross-region factors (multiplying the band rates).
#[derive(Debug, Clone, Default)]
pub struct CrossRegion {
    /// For `filing_type = temporary` (其他临时外出就医).
    pub temporary_factor: Option<Decimal>,
    pub temporary_source: Option<String>,
    /// For care that was not filed and not an emergency; `None`: the estimate refuses.
    pub unfiled_factor: Option<Decimal>,
    pub unfiled_source: Option<String>,
    pub unverified: BTreeSet<Param>,
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub effective: String,
    pub sources: Vec<String>,
    /// Shown to users when the policy cannot estimate (e.g. "no figures found").
    pub note: Option<String>,
    /// One sentence every estimate with this policy shows (e.g. whose table it assumes).
    pub assumption: Option<String>,
    pub inpatient: Option<ParamTree>,
    pub outpatient: Option<ParamTree>,
    pub cross_region: CrossRegion,
    /// The file it was read from.
    pub file: PathBuf,
}

impl Policy {
    /// Parses and validates one policy file's text; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &Path) -> Result<Policy, Vec<PolicyError>> {
        let file_name = file.display().to_string();
        let mut ctx = Ctx {
            file: &file_name,
            errors: Vec::new(),
        };
        let policy = ctx.policy(text, file);
        match policy {
            Some(p) if ctx.errors.is_empty() => Ok(p),
            _ => Err(ctx.errors),
        }
    }

    /// Reads and validates one policy file.
    pub fn from_file(path: &Path) -> Result<Policy, Vec<PolicyError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![PolicyError::new(
                &path.display().to_string(),
                None,
                format!("cannot read: {e}"),
            )]
        })?;
        Policy::from_toml_str(&text, path)
    }
}

/// All loaded policies, by id.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    by_id: BTreeMap<String, Policy>,
}

impl Policies {
    /// Loads every `*.toml` file of the policies folder. `dir` is the knowledge folder (the
    /// policies are read from `dir/policies/`) or the policies folder itself (a folder named
    /// `policies`). A missing policies folder is an error; so is a file whose name is not its
    /// policy id. Returns every error of every file, or all policies.
    pub fn load_dir(dir: &Path) -> Result<Policies, Vec<PolicyError>> {
        let folder = if dir.join("policies").is_dir() {
            dir.join("policies")
        } else if dir.file_name().is_some_and(|n| n == "policies") {
            dir.to_path_buf()
        } else {
            dir.join("policies")
        };
        if !folder.is_dir() {
            let missing = folder.display().to_string();
            return Err(vec![PolicyError::new(
                &missing,
                None,
                "the policies folder is missing",
            )]);
        }
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            vec![PolicyError::new(
                &folder.display().to_string(),
                None,
                format!("cannot read: {e}"),
            )]
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut policies = Policies::default();
        let mut errors = Vec::new();
        for path in files {
            match Policy::from_file(&path) {
                Ok(policy) => {
                    let stem = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default();
                    if stem != policy.id {
                        errors.push(PolicyError::new(
                            &path.display().to_string(),
                            Some("id".into()),
                            format!(
                                "the id `{}` must match the file name `{stem}.toml`",
                                policy.id
                            ),
                        ));
                        continue;
                    }
                    if let Err(e) = policies.insert(policy) {
                        errors.push(e);
                    }
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(policies)
        } else {
            // paths relative to the knowledge folder, like every other data error
            let base = folder.parent().unwrap_or(&folder);
            for e in &mut errors {
                if let Ok(rel) = Path::new(&e.file).strip_prefix(base) {
                    e.file = rel.display().to_string();
                }
            }
            Err(errors)
        }
    }

    /// Loads one more policy file (`--policy FILE`). Its id must not be taken already; on
    /// error nothing is added.
    pub fn add_file(&mut self, path: &Path) -> Result<(), Vec<PolicyError>> {
        let policy = Policy::from_file(path)?;
        self.insert(policy).map_err(|e| vec![e])
    }

    /// Adds a validated policy; its id must not be taken already.
    pub fn insert(&mut self, policy: Policy) -> Result<(), PolicyError> {
        if let Some(existing) = self.by_id.get(&policy.id) {
            return Err(PolicyError::new(
                &policy.file.display().to_string(),
                Some("id".into()),
                format!(
                    "policy id `{}` is already defined by {}",
                    policy.id,
                    existing.file.display()
                ),
            ));
        }
        self.by_id.insert(policy.id.clone(), policy);
        Ok(())
    }

    /// The policy with this id.
    pub fn get(&self, id: &str) -> Option<&Policy> {
        self.by_id.get(id)
    }

    /// The policy ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.by_id.keys().map(String::as_str)
    }

    /// The policies, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> + '_ {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The serde shape of a policy file. Tables below the top level are kept as `toml::Table`
/// and deserialized one by one, so that errors know their path; numbers are kept as
/// `toml::Value` and parsed into `Decimal` by the validation.
mod raw {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Policy {
        pub id: String,
        pub name: String,
        pub effective: String,
        pub sources: Vec<String>,
        #[serde(default)]
        pub note: Option<String>,
        #[serde(default)]
        pub assumption: Option<String>,
        #[serde(default)]
        pub verified: Option<bool>,
        #[serde(default)]
        pub unverified: Vec<String>,
        #[serde(default)]
        pub inpatient: Option<toml::Table>,
        #[serde(default)]
        pub outpatient: Option<toml::Table>,
        #[serde(default)]
        pub cross_region: Option<toml::Table>,
    }

    /// A section (`[inpatient]`) or a person table below it.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Node {
        #[serde(default)]
        pub deductible: Option<toml::Value>,
        #[serde(default)]
        pub subsequent_admission_factor: Option<toml::Value>,
        #[serde(default)]
        pub later_admission_deductible: Option<toml::Value>,
        #[serde(default)]
        pub bands: Option<Vec<toml::Value>>,
        #[serde(default)]
        pub bands_basis: Option<String>,
        #[serde(default)]
        pub deductible_basis: Option<String>,
        #[serde(default)]
        pub class_b_copay: Option<toml::Value>,
        #[serde(default)]
        pub annual_cap: Option<toml::Value>,
        #[serde(default)]
        pub sources: Vec<String>,
        #[serde(default)]
        pub verified: Option<bool>,
        #[serde(default)]
        pub unverified: Vec<String>,
        #[serde(default)]
        pub employee: Option<toml::Table>,
        #[serde(default)]
        pub resident: Option<toml::Table>,
        #[serde(default)]
        pub working: Option<toml::Table>,
        #[serde(default)]
        pub retired: Option<toml::Table>,
        #[serde(default)]
        pub student: Option<toml::Table>,
        #[serde(default)]
        pub adult: Option<toml::Table>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Band {
        #[serde(default)]
        pub upper: Option<toml::Value>,
        pub rate: toml::Value,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CrossRegion {
        #[serde(default)]
        pub temporary_factor: Option<toml::Value>,
        #[serde(default)]
        pub temporary_source: Option<String>,
        #[serde(default)]
        pub unfiled_factor: Option<toml::Value>,
        #[serde(default)]
        pub unfiled_source: Option<String>,
        #[serde(default)]
        pub verified: Option<bool>,
        #[serde(default)]
        pub unverified: Vec<String>,
    }
}

/// A value and whether it comes from a secondary source.
#[derive(Debug, Clone)]
struct Flagged<T> {
    value: T,
    unverified: bool,
}

/// What a table passes down to the tables below it.
#[derive(Debug, Clone, Default)]
struct Inherited {
    deductible: Option<Flagged<BTreeMap<u8, Decimal>>>,
    subsequent_admission_factor: Option<Flagged<Decimal>>,
    later_admission_deductible: Option<Flagged<Decimal>>,
    bands: Option<Flagged<Vec<Band>>>,
    bands_basis: Option<Flagged<BandsBasis>>,
    deductible_basis: Option<Flagged<DeductibleBasis>>,
    class_b_copay: Option<Flagged<Decimal>>,
    annual_cap: Option<Flagged<Decimal>>,
    sources: Vec<String>,
    /// `verified = false` on this table or above.
    all_unverified: bool,
    /// `unverified = [...]` on this table or above.
    unverified: BTreeSet<Param>,
    /// Parameters written in this table or above, valid or not (an invalid one is reported
    /// where it is written, not again as missing).
    written: BTreeSet<Param>,
}

impl Inherited {
    fn flag(&self, param: Param) -> bool {
        self.all_unverified || self.unverified.contains(&param)
    }
}

/// A value written in the table `here`, flagged when that table or one above is unverified.
fn flagged<T>(here: &Inherited, param: Param, value: T) -> Flagged<T> {
    Flagged {
        value,
        unverified: here.flag(param),
    }
}

/// Where a table sits: which person tables it may contain.
#[derive(Debug, Clone, Copy)]
enum Level {
    Section,
    Employee,
    Resident,
    Person,
}

/// Validation state: the file's name and the errors so far.
struct Ctx<'a> {
    file: &'a str,
    errors: Vec<PolicyError>,
}

impl Ctx<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors
            .push(PolicyError::new(self.file, Some(field.into()), message));
    }

    fn policy(&mut self, text: &str, file: &Path) -> Option<Policy> {
        let raw: raw::Policy = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let at = e
                    .span()
                    .map(|s| {
                        let (line, col) = line_col(text, s.start);
                        format!("line {line}, column {col}: ")
                    })
                    .unwrap_or_default();
                self.errors.push(PolicyError::new(
                    self.file,
                    None,
                    format!("{at}{}", e.message().trim()),
                ));
                return None;
            }
        };
        let id_ok = !raw.id.is_empty()
            && raw
                .id
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && raw
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !id_ok {
            self.err(
                "id",
                format!(
                    "`{}` is not a valid id (lowercase a-z, 0-9, '-', '_')",
                    raw.id
                ),
            );
        }
        for (field, value) in [("name", &raw.name), ("effective", &raw.effective)] {
            if value.trim().is_empty() {
                self.err(field, "must not be empty");
            }
        }
        if raw.sources.is_empty() {
            self.err("sources", "name at least one source");
        }
        for (i, s) in raw.sources.iter().enumerate() {
            if s.trim().is_empty() {
                self.err(format!("sources[{i}]"), "must not be empty");
            }
        }
        if raw.note.as_ref().is_some_and(|n| n.trim().is_empty()) {
            self.err("note", "must not be empty");
        }
        if raw.assumption.as_ref().is_some_and(|n| n.trim().is_empty()) {
            self.err("assumption", "must not be empty");
        }
        let mut top = Inherited {
            all_unverified: raw.verified == Some(false),
            unverified: self.param_list("unverified", &raw.unverified, &Param::SECTION, true),
            ..Inherited::default()
        };
        let cross_region = self.cross_region(raw.cross_region, &top);
        top.unverified.retain(|p| !Param::CROSS_REGION.contains(p));
        let inpatient = raw
            .inpatient
            .and_then(|t| self.tree(t, "inpatient", Level::Section, &top));
        let outpatient = raw
            .outpatient
            .and_then(|t| self.tree(t, "outpatient", Level::Section, &top));
        if inpatient.is_none()
            && outpatient.is_none()
            && raw.note.is_none()
            && self.errors.is_empty()
        {
            self.err(
                "note",
                "a policy without `inpatient` or `outpatient` must say why in `note` (shown to users)",
            );
        }
        Some(Policy {
            id: raw.id,
            name: raw.name,
            effective: raw.effective,
            sources: raw.sources,
            note: raw.note,
            assumption: raw.assumption,
            inpatient,
            outpatient,
            cross_region: cross_region.unwrap_or_default(),
            file: file.to_path_buf(),
        })
    }

    /// Parses an `unverified` list; `cross_ok` also allows the cross-region parameters.
    fn param_list(
        &mut self,
        path: &str,
        names: &[String],
        allowed: &[Param],
        cross_ok: bool,
    ) -> BTreeSet<Param> {
        let mut out = BTreeSet::new();
        for (i, name) in names.iter().enumerate() {
            match Param::from_key(name) {
                Some(p)
                    if allowed.contains(&p) || (cross_ok && Param::CROSS_REGION.contains(&p)) =>
                {
                    out.insert(p);
                }
                _ => {
                    let keys: Vec<&str> = allowed
                        .iter()
                        .chain(if cross_ok {
                            &Param::CROSS_REGION[..]
                        } else {
                            &[]
                        })
                        .map(|p| p.key())
                        .collect();
                    self.err(
                        format!("{path}[{i}]"),
                        format!("unknown parameter `{name}` (one of {})", keys.join(", ")),
                    );
                }
            }
        }
        out
    }

    fn verified_flag(&mut self, path: &str, verified: Option<bool>, above: bool) -> bool {
        if verified == Some(true) && above {
            self.err(
                join(path, "verified"),
                "`verified = true` cannot override `verified = false` set above",
            );
        }
        above || verified == Some(false)
    }

    fn cross_region(&mut self, table: Option<toml::Table>, top: &Inherited) -> Option<CrossRegion> {
        let table = table?;
        let raw: raw::CrossRegion = match toml::Value::Table(table).try_into() {
            Ok(r) => r,
            Err(e) => {
                self.err("cross_region", e.message().trim().to_string());
                return None;
            }
        };
        let all = self.verified_flag("cross_region", raw.verified, top.all_unverified);
        let mut listed = self.param_list(
            "cross_region.unverified",
            &raw.unverified,
            &Param::CROSS_REGION,
            false,
        );
        listed.extend(
            top.unverified
                .iter()
                .filter(|p| Param::CROSS_REGION.contains(p)),
        );
        let mut out = CrossRegion::default();
        for (param, value, source) in [
            (
                Param::TemporaryFactor,
                raw.temporary_factor,
                raw.temporary_source,
            ),
            (Param::UnfiledFactor, raw.unfiled_factor, raw.unfiled_source),
        ] {
            let path = join("cross_region", param.key());
            let given = value.is_some();
            let factor = value.and_then(|v| self.rate(&path, &v));
            if source.is_some() && !given {
                self.err(
                    format!("{path}_source"),
                    format!("a source without `{}`", param.key()),
                );
            }
            if source.as_ref().is_some_and(|s| s.trim().is_empty()) {
                self.err(format!("{path}_source"), "must not be empty");
            }
            if factor.is_some() && (all || listed.contains(&param)) {
                out.unverified.insert(param);
            }
            match param {
                Param::TemporaryFactor => {
                    out.temporary_factor = factor;
                    out.temporary_source = source;
                }
                _ => {
                    out.unfiled_factor = factor;
                    out.unfiled_source = source;
                }
            }
        }
        Some(out)
    }

    /// Validates one table and the tables below it.
    fn tree(
        &mut self,
        table: toml::Table,
        path: &str,
        level: Level,
        above: &Inherited,
    ) -> Option<ParamTree> {
        let raw: raw::Node = match toml::Value::Table(table).try_into() {
            Ok(r) => r,
            Err(e) => {
                self.err(path, e.message().trim().to_string());
                return None;
            }
        };
        let mut here = above.clone();
        here.all_unverified = self.verified_flag(path, raw.verified, above.all_unverified);
        let listed = self.param_list(
            &join(path, "unverified"),
            &raw.unverified,
            &Param::SECTION,
            false,
        );
        here.unverified.extend(listed);
        for (i, s) in raw.sources.iter().enumerate() {
            if s.trim().is_empty() {
                self.err(format!("{path}.sources[{i}]"), "must not be empty");
            } else if !here.sources.contains(s) {
                here.sources.push(s.clone());
            }
        }
        for (param, given) in [
            (Param::Deductible, raw.deductible.is_some()),
            (Param::Bands, raw.bands.is_some()),
            (Param::AnnualCap, raw.annual_cap.is_some()),
        ] {
            if given {
                here.written.insert(param);
            }
        }
        if let Some(v) = &raw.deductible
            && let Some(d) = self.deductible(&join(path, "deductible"), v)
        {
            here.deductible = Some(flagged(&here, Param::Deductible, d));
        }
        for (param, value) in [
            (
                Param::SubsequentAdmissionFactor,
                &raw.subsequent_admission_factor,
            ),
            (Param::ClassBCopay, &raw.class_b_copay),
        ] {
            let Some(v) = value else { continue };
            if let Some(r) = self.rate(&join(path, param.key()), v) {
                let f = Some(flagged(&here, param, r));
                match param {
                    Param::SubsequentAdmissionFactor => here.subsequent_admission_factor = f,
                    _ => here.class_b_copay = f,
                }
            }
        }
        for (param, value) in [
            (
                Param::LaterAdmissionDeductible,
                &raw.later_admission_deductible,
            ),
            (Param::AnnualCap, &raw.annual_cap),
        ] {
            let Some(v) = value else { continue };
            let field = join(path, param.key());
            if let Some(a) = self.amount(&field, v) {
                if param == Param::AnnualCap && a.is_zero() {
                    self.err(field, "must be greater than 0");
                    continue;
                }
                let f = Some(flagged(&here, param, a));
                match param {
                    Param::LaterAdmissionDeductible => here.later_admission_deductible = f,
                    _ => here.annual_cap = f,
                }
            }
        }
        if let Some(bands) = &raw.bands
            && let Some(b) = self.bands(&join(path, "bands"), bands)
        {
            here.bands = Some(flagged(&here, Param::Bands, b));
        }
        if let Some(basis) = &raw.bands_basis {
            let b = match basis.as_str() {
                "admission" => Some(BandsBasis::Admission),
                "cumulative" => Some(BandsBasis::Cumulative),
                other => {
                    self.err(
                        join(path, "bands_basis"),
                        format!("`{other}` is not one of \"admission\", \"cumulative\""),
                    );
                    None
                }
            };
            if let Some(b) = b {
                here.bands_basis = Some(flagged(&here, Param::BandsBasis, b));
            }
        }
        if let Some(basis) = &raw.deductible_basis {
            let b = match basis.as_str() {
                "admission" => Some(DeductibleBasis::Admission),
                "yearly" => Some(DeductibleBasis::Yearly),
                other => {
                    self.err(
                        join(path, "deductible_basis"),
                        format!("`{other}` is not one of \"admission\", \"yearly\""),
                    );
                    None
                }
            };
            if let Some(b) = b {
                here.deductible_basis = Some(flagged(&here, Param::DeductibleBasis, b));
            }
        }

        let children: [(&str, Option<toml::Table>); 6] = [
            ("employee", raw.employee),
            ("resident", raw.resident),
            ("working", raw.working),
            ("retired", raw.retired),
            ("student", raw.student),
            ("adult", raw.adult),
        ];
        let (slot, allowed, child_level): (Option<PersonSlot>, &[&str], Level) = match level {
            Level::Section => (
                Some(PersonSlot::Scheme),
                &["employee", "resident"],
                Level::Person,
            ),
            Level::Employee => (
                Some(PersonSlot::Employment),
                &["working", "retired"],
                Level::Person,
            ),
            Level::Resident => (
                Some(PersonSlot::Category),
                &["student", "adult"],
                Level::Person,
            ),
            Level::Person => (None, &[], Level::Person),
        };
        let mut branches = BTreeMap::new();
        let mut any_child = false;
        for (key, table) in children {
            let Some(table) = table else { continue };
            any_child = true;
            let child_path = join(path, key);
            if !allowed.contains(&key) {
                let hint = match key {
                    "employee" | "resident" => "directly under a section such as `[inpatient]`",
                    "working" | "retired" => "under `employee`",
                    _ => "under `resident`",
                };
                self.err(child_path, format!("`{key}` is only allowed {hint}"));
                continue;
            }
            let level = match (level, key) {
                (Level::Section, "employee") => Level::Employee,
                (Level::Section, _) => Level::Resident,
                _ => child_level,
            };
            if let Some(t) = self.tree(table, &child_path, level, &here) {
                branches.insert(key.to_string(), t);
            }
        }
        if any_child {
            let slot = slot?;
            return if branches.is_empty() {
                None
            } else {
                Some(ParamTree::Split { slot, branches })
            };
        }
        self.leaf(path, here).map(ParamTree::Set)
    }

    /// Checks that a leaf table has every required parameter and builds its set.
    fn leaf(&mut self, path: &str, here: Inherited) -> Option<ParamSet> {
        for param in [Param::Deductible, Param::Bands, Param::AnnualCap] {
            if !here.written.contains(&param) {
                self.err(
                    join(path, param.key()),
                    "missing (set it in this table or in a table above it)",
                );
            }
        }
        let mut unverified = BTreeSet::new();
        let mut note = |param: Param, flag: Option<bool>| {
            if flag == Some(true) {
                unverified.insert(param);
            }
        };
        note(
            Param::Deductible,
            here.deductible.as_ref().map(|f| f.unverified),
        );
        note(
            Param::SubsequentAdmissionFactor,
            here.subsequent_admission_factor
                .as_ref()
                .map(|f| f.unverified),
        );
        note(
            Param::LaterAdmissionDeductible,
            here.later_admission_deductible
                .as_ref()
                .map(|f| f.unverified),
        );
        note(Param::Bands, here.bands.as_ref().map(|f| f.unverified));
        note(
            Param::BandsBasis,
            here.bands_basis.as_ref().map(|f| f.unverified),
        );
        note(
            Param::ClassBCopay,
            here.class_b_copay.as_ref().map(|f| f.unverified),
        );
        note(
            Param::AnnualCap,
            here.annual_cap.as_ref().map(|f| f.unverified),
        );
        note(
            Param::DeductibleBasis,
            here.deductible_basis.as_ref().map(|f| f.unverified),
        );
        Some(ParamSet {
            path: path.to_string(),
            deductible: here.deductible?.value,
            subsequent_admission_factor: here.subsequent_admission_factor.map(|f| f.value),
            later_admission_deductible: here.later_admission_deductible.map(|f| f.value),
            bands: here.bands?.value,
            bands_basis: here
                .bands_basis
                .map(|f| f.value)
                .unwrap_or(BandsBasis::Admission),
            deductible_basis: here
                .deductible_basis
                .map(|f| f.value)
                .unwrap_or(DeductibleBasis::Admission),
            class_b_copay: here.class_b_copay.map(|f| f.value),
            annual_cap: here.annual_cap?.value,
            sources: here.sources,
            unverified,
        })
    }

    fn deductible(&mut self, path: &str, value: &toml::Value) -> Option<BTreeMap<u8, Decimal>> {
        let toml::Value::Table(table) = value else {
            let amount = self.amount(path, value)?;
            return Some((1..=3).map(|l| (l, amount)).collect());
        };
        self.deductible_levels(path, table, false)
    }

    /// A table by hospital level (1, 2, 3) of amounts, or of rates when `rates`.
    fn deductible_levels(
        &mut self,
        path: &str,
        table: &toml::Table,
        rates: bool,
    ) -> Option<BTreeMap<u8, Decimal>> {
        if table.is_empty() {
            self.err(path, "give at least one hospital level (1, 2 or 3)");
            return None;
        }
        let mut out = BTreeMap::new();
        for (key, v) in table {
            let field = join(path, key);
            let level = match key.as_str() {
                "1" => 1,
                "2" => 2,
                "3" => 3,
                _ => {
                    self.err(
                        field,
                        format!("`{key}` is not a hospital level (1, 2 or 3)"),
                    );
                    continue;
                }
            };
            let value = if rates {
                self.rate(&field, v)
            } else {
                self.amount(&field, v)
            };
            if let Some(a) = value {
                out.insert(level, a);
            }
        }
        (out.len() == table.len()).then_some(out)
    }

    fn bands(&mut self, path: &str, values: &[toml::Value]) -> Option<Vec<Band>> {
        if values.is_empty() {
            self.err(path, "give at least one band");
            return None;
        }
        let before = self.errors.len();
        let mut out: Vec<Band> = Vec::new();
        let mut lower = Decimal::ZERO;
        for (i, value) in values.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let raw: raw::Band = match value.clone().try_into() {
                Ok(b) => b,
                Err(e) => {
                    self.err(at, e.message().trim().to_string());
                    continue;
                }
            };
            let (rate, rate_by_level) = match &raw.rate {
                toml::Value::Table(t) => {
                    match self.deductible_levels(&join(&at, "rate"), t, true) {
                        Some(by_level) => (by_level.values().next_back().copied(), by_level),
                        None => (None, BTreeMap::new()),
                    }
                }
                v => (self.rate(&join(&at, "rate"), v), BTreeMap::new()),
            };
            let last = i + 1 == values.len();
            let upper = match (&raw.upper, last) {
                (Some(_), true) => {
                    self.err(
                        join(&at, "upper"),
                        "the last band must have no `upper` (it is unbounded)",
                    );
                    None
                }
                (None, false) => {
                    self.err(
                        join(&at, "upper"),
                        "missing: only the last band is unbounded",
                    );
                    None
                }
                (Some(v), false) => self.amount(&join(&at, "upper"), v),
                (None, true) => None,
            };
            if let Some(u) = upper
                && u <= lower
            {
                self.err(
                    join(&at, "upper"),
                    format!("must be greater than the band's lower bound {lower}"),
                );
            }
            if let Some(rate) = rate {
                out.push(Band {
                    lower,
                    upper,
                    rate,
                    rate_by_level,
                });
            }
            if let Some(u) = upper {
                lower = u;
            }
        }
        (self.errors.len() == before).then_some(out)
    }

    /// A rate or factor: a decimal in [0, 1].
    fn rate(&mut self, path: &str, value: &toml::Value) -> Option<Decimal> {
        let d = self.decimal(path, value)?;
        if d.is_sign_negative() && !d.is_zero() || d > Decimal::ONE {
            self.err(path, format!("{d} is not between 0 and 1"));
            return None;
        }
        if d.normalize().scale() > MAX_RATE_DP {
            self.err(path, format!("at most {MAX_RATE_DP} decimal places"));
            return None;
        }
        Some(d)
    }

    /// An amount of yuan: non-negative, at most two decimal places.
    fn amount(&mut self, path: &str, value: &toml::Value) -> Option<Decimal> {
        let d = self.decimal(path, value)?;
        if d.is_sign_negative() && !d.is_zero() {
            self.err(path, "must not be negative");
            return None;
        }
        if d.normalize().scale() > 2 {
            self.err(path, "at most two decimal places (fen)");
            return None;
        }
        if d > MAX_POLICY_AMOUNT {
            self.err(path, format!("must not exceed {MAX_POLICY_AMOUNT}"));
            return None;
        }
        Some(d)
    }

    fn decimal(&mut self, path: &str, value: &toml::Value) -> Option<Decimal> {
        let parsed = match value {
            toml::Value::String(s) => parse_decimal(s)
                .ok_or_else(|| format!("`{s}` is not a decimal number (write e.g. \"0.88\")")),
            toml::Value::Integer(i) => Ok(Decimal::from(*i)),
            toml::Value::Float(f) => Err(format!(
                "write decimals as strings, e.g. \"{f}\" (a TOML float goes through binary floating point)"
            )),
            other => Err(format!(
                "expected a decimal string such as \"0.88\", found {}",
                other.type_str()
            )),
        };
        match parsed {
            Ok(d) => Some(if d.is_zero() { Decimal::ZERO } else { d }),
            Err(m) => {
                self.err(path, m);
                None
            }
        }
    }
}

/// Parses a plain decimal: optional '-', digits, optionally '.' and digits; nothing else.
pub(crate) fn parse_decimal(s: &str) -> Option<Decimal> {
    let t = s.trim();
    let body = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    Decimal::from_str(t).ok()
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, Vec<PolicyError>> {
        Policy::from_toml_str(text, Path::new("knowledge/policies/test.toml"))
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => panic!("expected errors"),
            Err(es) => es.iter().map(ToString::to_string).collect(),
        }
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    const HEAD: &str =
        "id = \"test\"\nname = \"测试\"\neffective = \"2024\"\nsources = [\"001 x\"]\n";

    const PER_PERSON: &str = r#"
id = "test"
name = "测试"
effective = "2024"
sources = ["001 x"]

[inpatient]
verified = false
annual_cap = "350000"
subsequent_admission_factor = "0.5"
later_admission_deductible = "100"
bands_basis = "cumulative"

[inpatient.employee.working]
deductible = { 1 = "300", 2 = "600", 3 = "800" }
bands = [{ upper = "40000", rate = "0.90" }, { rate = "0.95" }]

[inpatient.employee.retired]
deductible = { 1 = "200", 2 = "400", 3 = "600" }
bands = [{ rate = "0.95" }]

[inpatient.resident]
sources = ["resident page"]
bands = [{ upper = "40000", rate = "0.75" }, { upper = "100000", rate = "0.80" }, { rate = "0.90" }]

[inpatient.resident.student]
deductible = "500"

[inpatient.resident.adult]
deductible = { 1 = "300", 2 = "500", 3 = "800" }
"#;

    fn reference_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference-policy.toml")
    }

    #[test]
    fn reference_policy_loads_in_its_flat_shape() {
        let p = Policy::from_file(&reference_path()).unwrap();
        assert_eq!(p.id, "reference");
        assert!(p.outpatient.is_none());
        let ParamTree::Set(set) = p.inpatient.as_ref().unwrap() else {
            panic!("flat")
        };
        assert_eq!(set.path, "inpatient");
        assert_eq!(set.deductible[&3], d("900"));
        assert_eq!(set.deductible[&1], d("300"));
        assert_eq!(set.subsequent_admission_factor, Some(d("0.5")));
        assert_eq!(set.later_admission_deductible, None);
        assert_eq!(set.bands_basis, BandsBasis::Admission);
        assert_eq!(set.class_b_copay, Some(d("0.10")));
        assert_eq!(set.annual_cap, d("400000"));
        assert!(set.unverified.is_empty());
        let bands: Vec<(String, Option<String>, String)> = set
            .bands
            .iter()
            .map(|b| {
                (
                    b.lower.to_string(),
                    b.upper.map(|u| u.to_string()),
                    b.rate.to_string(),
                )
            })
            .collect();
        assert_eq!(
            bands,
            [
                ("0".into(), Some("3000".into()), "0.88".into()),
                ("3000".into(), Some("5000".into()), "0.90".into()),
                ("5000".into(), Some("10000".into()), "0.92".into()),
                ("10000".into(), None, "0.95".into()),
            ]
        );
        assert_eq!(p.cross_region.temporary_factor, Some(d("0.8")));
        assert_eq!(p.cross_region.unfiled_factor, None);
    }

    #[test]
    fn per_person_shape_loads_with_inheritance() {
        let p = parse(PER_PERSON).unwrap();
        let tree = p.inpatient.as_ref().unwrap();
        let pick = |scheme, emp, cat| {
            tree.select(move |slot| match slot {
                PersonSlot::Scheme => scheme,
                PersonSlot::Employment => emp,
                PersonSlot::Category => cat,
            })
        };
        let retired = pick(Some("employee"), Some("retired"), None).unwrap();
        assert_eq!(retired.path, "inpatient.employee.retired");
        assert_eq!(retired.deductible[&3], d("600"));
        assert_eq!(retired.annual_cap, d("350000"));
        assert_eq!(retired.later_admission_deductible, Some(d("100")));
        assert_eq!(retired.bands_basis, BandsBasis::Cumulative);
        assert_eq!(retired.bands.len(), 1);
        let student = pick(Some("resident"), None, Some("student")).unwrap();
        assert_eq!(
            student.deductible.values().collect::<Vec<_>>(),
            [&d("500"); 3]
        );
        assert_eq!(student.bands.len(), 3);
        assert_eq!(student.sources, ["resident page"]);
        // everything is written under `verified = false`
        assert!(student.unverified.contains(&Param::Deductible));
        assert!(student.unverified.contains(&Param::AnnualCap));
        assert!(student.unverified.contains(&Param::BandsBasis));
        assert_eq!(
            pick(None, None, None).unwrap_err(),
            SelectError::Missing(PersonSlot::Scheme)
        );
        assert_eq!(
            pick(Some("employee"), None, Some("student")).unwrap_err(),
            SelectError::Missing(PersonSlot::Employment)
        );
        assert_eq!(
            pick(Some("resident"), Some("working"), None).unwrap_err(),
            SelectError::Missing(PersonSlot::Category)
        );
        assert_eq!(tree.sets().len(), 4);
    }

    #[test]
    fn uncovered_branch_is_reported() {
        let text = format!(
            "{HEAD}[inpatient.employee]\ndeductible = \"100\"\nbands = [{{ rate = \"0.9\" }}]\nannual_cap = \"1000\"\n"
        );
        let p = parse(&text).unwrap();
        let tree = p.inpatient.unwrap();
        let err = tree
            .select(|slot| (slot == PersonSlot::Scheme).then_some("resident"))
            .unwrap_err();
        assert_eq!(
            err,
            SelectError::NotCovered(PersonSlot::Scheme, "resident".into())
        );
        assert!(tree.select(|_| Some("employee")).is_ok());
    }

    #[test]
    fn verified_flags_follow_where_values_are_written() {
        let text = format!(
            r#"{HEAD}
[inpatient]
annual_cap = "1000"
unverified = ["class_b_copay"]
class_b_copay = "0.1"
[inpatient.employee]
verified = false
deductible = "100"
bands = [{{ rate = "0.9" }}]
[inpatient.resident]
deductible = "100"
bands = [{{ rate = "0.9" }}]
[cross_region]
temporary_factor = "0.8"
unfiled_factor = "0.7"
unverified = ["unfiled_factor"]
"#
        );
        let p = parse(&text).unwrap();
        let tree = p.inpatient.as_ref().unwrap();
        let emp = tree.select(|_| Some("employee")).unwrap();
        let res = tree.select(|_| Some("resident")).unwrap();
        // the cap is written above `verified = false`: it stays verified
        assert_eq!(
            emp.unverified,
            BTreeSet::from([Param::Deductible, Param::Bands, Param::ClassBCopay])
        );
        assert_eq!(res.unverified, BTreeSet::from([Param::ClassBCopay]));
        assert_eq!(
            p.cross_region.unverified,
            BTreeSet::from([Param::UnfiledFactor])
        );

        let all = format!(
            "{HEAD}verified = false\n[inpatient]\ndeductible = \"1\"\nbands = [{{ rate = \"1\" }}]\nannual_cap = \"1\"\n[cross_region]\ntemporary_factor = \"0.8\"\n"
        );
        let p = parse(&all).unwrap();
        let ParamTree::Set(set) = p.inpatient.as_ref().unwrap() else {
            panic!()
        };
        assert!(set.unverified.contains(&Param::Deductible));
        assert!(p.cross_region.unverified.contains(&Param::TemporaryFactor));
    }

    #[test]
    fn errors_name_file_and_nested_field() {
        let bad = PER_PERSON.replace(
            "[inpatient.employee.retired]\ndeductible = { 1 = \"200\", 2 = \"400\", 3 = \"600\" }\nbands = [{ rate = \"0.95\" }]",
            "[inpatient.employee.retired]\ndeductible = { 1 = \"200\", 2 = \"400\", 3 = \"600\" }\nbands = [{ upper = \"1000\", rate = \"0.9\" }, { upper = \"2000\", rate = \"0.9\" }, { rate = \"1.5\" }]",
        );
        assert_eq!(
            errors(&bad),
            [
                "knowledge/policies/test.toml: field inpatient.employee.retired.bands[2].rate: 1.5 is not between 0 and 1"
            ]
        );
    }

    #[test]
    fn rates_by_level_and_yearly_deductible() {
        let text = format!(
            "{HEAD}[outpatient]\ndeductible = \"600\"\ndeductible_basis = \"yearly\"\nbands = [{{ rate = {{ 1 = \"0.8\", 3 = \"0.6\" }} }}]\nannual_cap = \"13000\"\n"
        );
        let p = parse(&text).unwrap();
        let ParamTree::Set(set) = p.outpatient.as_ref().unwrap() else {
            panic!()
        };
        assert_eq!(set.deductible_basis, DeductibleBasis::Yearly);
        assert_eq!(set.bands[0].rate_for(1), Some(d("0.8")));
        assert_eq!(set.bands[0].rate_for(2), None);
        assert_eq!(set.bands[0].rate_for(3), Some(d("0.6")));
        let bad = text
            .replace("yearly", "monthly")
            .replace("3 = \"0.6\"", "4 = \"1.6\"");
        let es = errors(&bad);
        for w in [
            "field outpatient.deductible_basis: `monthly` is not one of",
            "field outpatient.bands[0].rate.4: `4` is not a hospital level",
        ] {
            assert!(es.iter().any(|e| e.contains(w)), "missing {w:?} in {es:#?}");
        }
        let es = errors(&text.replace("0.6", "1.6"));
        assert!(
            es.iter()
                .any(|e| e.contains("field outpatient.bands[0].rate.3: 1.6 is not between 0 and 1")),
            "{es:#?}"
        );
    }

    #[test]
    fn floats_are_refused() {
        let text = format!(
            "{HEAD}[inpatient]\ndeductible = \"1\"\nbands = [{{ rate = 0.9 }}]\nannual_cap = \"1\"\n"
        );
        let es = errors(&text);
        assert_eq!(es.len(), 1);
        assert!(es[0].starts_with("knowledge/policies/test.toml: field inpatient.bands[0].rate: write decimals as strings"), "{es:?}");
    }

    #[test]
    fn unknown_fields_are_errors() {
        let es = errors(&format!("{HEAD}colour = \"red\"\n"));
        assert!(
            es[0].contains("line 5, column 1") && es[0].contains("unknown field `colour`"),
            "{es:?}"
        );
        let es = errors(&format!(
            "{HEAD}[inpatient]\ndeductible = \"1\"\nbands = [{{ rate = \"1\", ratee = \"1\" }}]\nannual_cap = \"1\"\n"
        ));
        assert!(
            es[0].contains("field inpatient.bands[0]: unknown field `ratee`"),
            "{es:?}"
        );
        let es = errors(&format!("{HEAD}[inpatient]\ndeductable = \"1\"\n"));
        assert!(
            es[0].contains("field inpatient: unknown field `deductable`"),
            "{es:?}"
        );
        let es = errors(&format!("{HEAD}[cross_region]\ntemporary = \"0.8\"\n"));
        assert!(
            es[0].contains("field cross_region: unknown field `temporary`"),
            "{es:?}"
        );
    }

    #[test]
    fn value_errors_are_all_reported() {
        let text = format!(
            r#"{HEAD}
[inpatient]
deductible = {{ 1 = "-5", 4 = "100", 3 = "1.005" }}
subsequent_admission_factor = "abc"
bands = [{{ upper = "5000", rate = "0.9" }}, {{ upper = "4000", rate = "0.9" }}, {{ rate = "0.9" }}]
bands_basis = "yearly"
annual_cap = "0"
[outpatient]
deductible = "100"
bands = [{{ upper = "100", rate = "0.5" }}]
"#
        );
        let es = errors(&text);
        let want = [
            "field inpatient.deductible.1: must not be negative",
            "field inpatient.deductible.3: at most two decimal places",
            "field inpatient.deductible.4: `4` is not a hospital level",
            "field inpatient.subsequent_admission_factor: `abc` is not a decimal number",
            "field inpatient.annual_cap: must be greater than 0",
            "field inpatient.bands[1].upper: must be greater than the band's lower bound 5000",
            "field inpatient.bands_basis: `yearly` is not one of",
            "field outpatient.bands[0].upper: the last band must have no `upper`",
            "field outpatient.annual_cap: missing",
        ];
        for w in want {
            assert!(es.iter().any(|e| e.contains(w)), "missing {w:?} in {es:#?}");
        }
    }

    #[test]
    fn structure_errors() {
        // person tables in the wrong place
        let es = errors(&format!(
            "{HEAD}[inpatient.working]\ndeductible = \"1\"\nbands = [{{ rate = \"1\" }}]\nannual_cap = \"1\"\n"
        ));
        assert!(
            es[0].contains("field inpatient.working: `working` is only allowed under `employee`"),
            "{es:?}"
        );
        let es = errors(&format!(
            "{HEAD}[inpatient.resident.retired]\ndeductible = \"1\"\nbands = [{{ rate = \"1\" }}]\nannual_cap = \"1\"\n"
        ));
        assert!(es[0].contains("field inpatient.resident.retired"), "{es:?}");
        // a leaf must be complete
        let es = errors(&format!("{HEAD}[inpatient.employee]\ndeductible = \"1\"\n"));
        assert!(
            es.iter()
                .any(|e| e.contains("field inpatient.employee.bands: missing")),
            "{es:?}"
        );
        assert!(
            es.iter()
                .any(|e| e.contains("field inpatient.employee.annual_cap: missing")),
            "{es:?}"
        );
        // `verified = true` below `verified = false`
        let es = errors(&format!(
            "{HEAD}verified = false\n[inpatient]\nverified = true\ndeductible = \"1\"\nbands = [{{ rate = \"1\" }}]\nannual_cap = \"1\"\n"
        ));
        assert!(es[0].contains("field inpatient.verified"), "{es:?}");
        // unknown parameter names in `unverified`
        let es = errors(&format!("{HEAD}unverified = [\"cap\"]\nnote = \"x\"\n"));
        assert!(
            es[0].contains("field unverified[0]: unknown parameter `cap`"),
            "{es:?}"
        );
        // bad id, empty sources
        let es = errors(
            "id = \"Su Zhou\"\nname = \"x\"\neffective = \"x\"\nsources = []\nnote = \"x\"\n",
        );
        assert!(es.iter().any(|e| e.contains("field id:")), "{es:?}");
        assert!(
            es.iter()
                .any(|e| e.contains("field sources: name at least one source")),
            "{es:?}"
        );
        // a policy without sections must say why
        let es = errors(HEAD);
        assert!(es[0].contains("field note:"), "{es:?}");
        // TOML syntax errors carry a line
        let es = errors("id = \"x\n");
        assert!(
            es[0].starts_with("knowledge/policies/test.toml: line 1"),
            "{es:?}"
        );
    }

    #[test]
    fn error_display() {
        let e = PolicyError::new("a.toml", Some("inpatient.annual_cap".into()), "missing");
        assert_eq!(e.to_string(), "a.toml: field inpatient.annual_cap: missing");
        let e = PolicyError::new("a.toml", None, "cannot read");
        assert_eq!(e.to_string(), "a.toml: cannot read");
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert_eq!(boxed.to_string(), "a.toml: cannot read");
    }

    #[test]
    fn load_dir_reads_folder_and_checks_names() {
        let dir = tempfile::tempdir().unwrap();
        let err = Policies::load_dir(dir.path()).unwrap_err();
        assert!(
            err[0]
                .to_string()
                .contains("the policies folder is missing"),
            "{err:?}"
        );
        let policies = dir.path().join("policies");
        let err = Policies::load_dir(&policies).unwrap_err();
        assert!(
            err[0]
                .to_string()
                .starts_with(&policies.display().to_string()),
            "{err:?}"
        );

        std::fs::create_dir(&policies).unwrap();
        std::fs::write(policies.join("README.md"), "not a policy").unwrap();
        std::fs::write(policies.join("test.toml"), PER_PERSON).unwrap();
        // both the knowledge folder and the policies folder work
        for root in [dir.path(), policies.as_path()] {
            let p = Policies::load_dir(root).unwrap();
            assert_eq!(p.ids().collect::<Vec<_>>(), ["test"]);
            assert_eq!(p.len(), 1);
            assert!(p.get("test").is_some() && p.get("x").is_none());
        }

        // the extra file: loads beside, refuses a taken id and leaves the set unchanged
        let mut p = Policies::load_dir(dir.path()).unwrap();
        p.add_file(&reference_path()).unwrap();
        assert_eq!(p.ids().collect::<Vec<_>>(), ["reference", "test"]);
        let err = p.add_file(&reference_path()).unwrap_err();
        assert!(err[0].to_string().contains("already defined"), "{err:?}");
        assert_eq!(p.len(), 2);
        let err = p.add_file(&dir.path().join("nope.toml")).unwrap_err();
        assert!(err[0].to_string().contains("cannot read"), "{err:?}");

        // a file whose name is not its id; a broken file: every error is returned
        std::fs::write(policies.join("other.toml"), PER_PERSON).unwrap();
        std::fs::write(
            policies.join("broken.toml"),
            format!("{HEAD}[inpatient]\nannual_cap = \"-1\"\n"),
        )
        .unwrap();
        let err = Policies::load_dir(dir.path()).unwrap_err();
        let text: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(
                |e| e.contains("broken.toml: field inpatient.annual_cap: must not be negative")
            ),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|e| e.contains(
                "other.toml: field id: the id `test` must match the file name `other.toml`"
            )),
            "{text:#?}"
        );
    }

    #[test]
    fn shipped_policies_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
        let policies = Policies::load_dir(&root).unwrap_or_else(|es| {
            panic!(
                "{}",
                es.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        assert!(policies.ids().any(|id| id == "suzhou"));
        assert!(policies.ids().any(|id| id == "zhangjiagang"));
        let suzhou = policies.get("suzhou").unwrap();
        // outpatient: employees only (门诊共济), a yearly deductible and ratios by level
        let out = suzhou.outpatient.as_ref().unwrap().sets();
        assert_eq!(out.len(), 2);
        for set in out {
            assert_eq!(set.deductible_basis, DeductibleBasis::Yearly);
            assert_eq!(set.bands.len(), 1);
            assert_eq!(set.bands[0].rate_by_level.len(), 3);
            assert!(set.unverified.contains(&Param::Bands), "{}", set.path);
        }
        let sets = suzhou.inpatient.as_ref().unwrap().sets();
        assert_eq!(sets.len(), 4);
        for set in sets {
            assert_eq!(set.bands_basis, BandsBasis::Cumulative);
            assert_eq!(set.class_b_copay, None);
            assert!(set.unverified.contains(&Param::Deductible), "{}", set.path);
        }
        assert!(
            !suzhou
                .cross_region
                .unverified
                .contains(&Param::TemporaryFactor)
        );
        assert!(
            suzhou
                .cross_region
                .unverified
                .contains(&Param::UnfiledFactor)
        );
        // 张家港: Suzhou's figures, every one flagged, with the sentence that says so
        let zjg = policies.get("zhangjiagang").unwrap();
        assert!(
            zjg.assumption
                .as_deref()
                .is_some_and(|a| a.contains("0512-12333"))
        );
        for tree in [&zjg.inpatient, &zjg.outpatient] {
            for set in tree.as_ref().unwrap().sets() {
                for p in Param::SECTION {
                    let written = match p {
                        Param::SubsequentAdmissionFactor => {
                            set.subsequent_admission_factor.is_some()
                        }
                        Param::LaterAdmissionDeductible => set.later_admission_deductible.is_some(),
                        Param::ClassBCopay => set.class_b_copay.is_some(),
                        Param::BandsBasis => set.bands_basis != BandsBasis::Admission,
                        Param::DeductibleBasis => {
                            set.deductible_basis != DeductibleBasis::Admission
                        }
                        _ => true,
                    };
                    assert_eq!(set.unverified.contains(&p), written, "{} {p:?}", set.path);
                }
            }
        }
        assert!(
            zjg.cross_region
                .unverified
                .contains(&Param::TemporaryFactor)
        );
        assert!(zjg.cross_region.unverified.contains(&Param::UnfiledFactor));
    }

    #[test]
    fn parse_decimal_is_strict() {
        assert_eq!(parse_decimal("0.88"), Some(d("0.88")));
        assert_eq!(parse_decimal(" 20000 "), Some(d("20000")));
        assert_eq!(parse_decimal("-1.5"), Some(d("-1.5")));
        for bad in ["", ".5", "5.", "1e5", "1,000", "+1", "abc", "1.2.3", "--1"] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }
}
