//! Regions as data: everything that differs by insured region (参保地) lives in one file per
//! region, `knowledge/regions/<id>.toml`, so that a new region needs files only, no Rust.
//!
//! # Format
//!
//! ```toml
//! id = "zhangjiagang"             # lowercase a-z, 0-9, '-', '_'; also the file name and the
//!                                 # value of the `insured_region` slot
//! name = "张家港市"                # the full name, for sentences
//! label = "张家港"                 # the button text; also how FAQ answers name the region at the
//!                                 # start of a paragraph ("张家港参保人员：…"), so that the user's
//!                                 # region's paragraph comes first
//! order = 2                       # optional: position among the choices (then by id)
//! aliases = ["张家港参保", "张家港"] # phrases that mean this region anywhere in a message
//! policy = "zhangjiagang"         # the estimate parameters: knowledge/policies/<policy>.toml
//! hotline = "0512-12333"          # optional: the region's medical-insurance hotline…
//! hotline_source = "000 咨询电话"   # …and the seed it comes from (required with `hotline`)
//! counters = "张家港市医疗保障局（华昌路3号）、各镇医保办"   # optional: where to go in person
//! counters_source = "000 …"       # required with `counters`
//! filing_channels = ["esscard-app"]   # the region's own filing channels (see below)
//! shard = "p001"                 # optional: the search shard (see below); default: the main one
//! temporary_reduced_ratio = true  # the 80% rule for 其他临时外出就医 applies (checklist warning
//!                                 # `temporary-reduced-ratio`; the policy must then have
//!                                 # `cross_region.temporary_factor`)
//!
//! [replies]                       # optional: small-talk replies for users of this region, by
//! human = "…"                     # intent id of knowledge/smalltalk.toml (e.g. 转人工)
//!
//! [channels.kunshan-wechat]       # optional: a filing channel of this region only
//! text = "“昆山医保”公众号"
//! source = "001 …"
//! ```
//!
//! `shard` groups regions for search: the entries of a region (and those whose `region` is
//! the shard's name) are searched together with the national entries, in their own index
//! and classifier, so that a deployment of hundreds of regions costs each question one
//! region group's work (issue 24). Regions without it form the main shard.
//!
//! `filing_channels` lists channel ids that checklist.md defines for one region
//! (`wechat-suzhou`, `esscard-app`) or that the file defines itself under `[channels]`; the
//! province-wide channels (`counter`, `jiangsu-app`, the national ones, `hospital`) apply to
//! every region and are not listed. Validation names the file and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::policy::Policy;
use super::values::{ChannelId, MAX_TEXT_CHARS, Text};

/// The folder, in the knowledge folder, that holds the region files.
pub const DIR: &str = "regions";

/// The channels every region has; a region file does not list them.
const GENERAL_CHANNELS: [ChannelId; 5] = [
    ChannelId::Counter,
    ChannelId::JiangsuApp,
    ChannelId::NationalApp,
    ChannelId::NationalMiniprogram,
    ChannelId::Hospital,
];

/// One insured region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub id: String,
    pub name: String,
    pub label: String,
    pub order: i64,
    pub aliases: Vec<String>,
    /// The policy id of its estimates.
    pub policy: String,
    pub hotline: Option<String>,
    pub hotline_source: Option<String>,
    pub counters: Option<String>,
    pub counters_source: Option<String>,
    /// The region's own filing channels, in the order written.
    pub filing_channels: Vec<String>,
    /// The 80% rule for 其他临时外出就医 applies.
    pub temporary_reduced_ratio: bool,
    /// The search shard: `None` for the main one.
    pub shard: Option<String>,
    /// Small-talk replies by intent id.
    pub replies: BTreeMap<String, String>,
    /// Channels the file defines itself.
    pub channels: BTreeMap<String, Text>,
    pub file: PathBuf,
}

/// All regions, in choice order (`order`, then id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Regions {
    regions: Vec<Region>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    id: String,
    name: String,
    label: String,
    #[serde(default)]
    order: Option<i64>,
    #[serde(default)]
    aliases: Vec<String>,
    policy: String,
    #[serde(default)]
    hotline: Option<String>,
    #[serde(default)]
    hotline_source: Option<String>,
    #[serde(default)]
    counters: Option<String>,
    #[serde(default)]
    counters_source: Option<String>,
    #[serde(default)]
    filing_channels: Vec<String>,
    #[serde(default)]
    temporary_reduced_ratio: bool,
    #[serde(default)]
    shard: Option<String>,
    #[serde(default)]
    replies: BTreeMap<String, String>,
    #[serde(default)]
    channels: BTreeMap<String, RawText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    text: String,
    source: String,
}

impl Regions {
    /// Loads `knowledge_dir/regions/*.toml`, checking each region's policy file in
    /// `knowledge_dir/policies/`. Returns every error (`"regions/x.toml: field …: …"`) or all
    /// regions. A missing folder is an error: every deployment serves at least one region.
    pub fn load_dir(knowledge_dir: &Path) -> Result<Regions, Vec<String>> {
        let folder = knowledge_dir.join(DIR);
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| vec![format!("{DIR}/: cannot read {}: {e}", folder.display())])?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut errors = Vec::new();
        let mut regions: Vec<Region> = Vec::new();
        for path in files {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let file = format!("{DIR}/{stem}.toml");
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(format!("{file}: cannot read: {e}"));
                    continue;
                }
            };
            let before = errors.len();
            if let Some(region) = parse(&file, &text, &path, &mut errors) {
                if region.id != stem {
                    errors.push(format!(
                        "{file}: field id: the id `{}` must match the file name `{stem}.toml`",
                        region.id
                    ));
                }
                check_policy(&file, &region, knowledge_dir, &mut errors);
                if errors.len() == before {
                    regions.push(region);
                }
            }
        }
        if regions.is_empty() && errors.is_empty() {
            errors.push(format!("{DIR}/: no region file (`<id>.toml`) found"));
        }
        // labels and aliases must tell the regions apart
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for r in &regions {
            for (field, phrase) in
                std::iter::once(("label", &r.label)).chain(r.aliases.iter().map(|a| ("aliases", a)))
            {
                if let Some(other) = seen.get(phrase)
                    && *other != r.id
                {
                    errors.push(format!(
                        "{DIR}/{}.toml: field {field}: `{phrase}` is already used by region `{other}`",
                        r.id
                    ));
                }
                seen.insert(phrase.clone(), r.id.clone());
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        regions.sort_by(|a, b| (a.order, &a.id).cmp(&(b.order, &b.id)));
        Ok(Regions { regions })
    }

    /// Regions built in code (tests).
    pub fn from_vec(mut regions: Vec<Region>) -> Regions {
        regions.sort_by(|a, b| (a.order, &a.id).cmp(&(b.order, &b.id)));
        Regions { regions }
    }

    pub fn get(&self, id: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.id == id)
    }

    /// In choice order.
    pub fn iter(&self) -> impl Iterator<Item = &Region> + '_ {
        self.regions.iter()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.regions.iter().map(|r| r.id.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// The text of a channel some region defines itself.
    pub fn channel(&self, id: &str) -> Option<&Text> {
        self.regions.iter().find_map(|r| r.channels.get(id))
    }
}

fn valid_id(id: &str) -> bool {
    id.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `"004 第十九条"`: three digits, a space and something.
fn cites_seed(source: &str) -> bool {
    let b = source.as_bytes();
    b.len() > 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' '
}

fn parse(file: &str, text: &str, path: &Path, errors: &mut Vec<String>) -> Option<Region> {
    let raw: RawRegion = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            errors.push(format!("{file}: {}", e.to_string().trim()));
            return None;
        }
    };
    let mut err = |field: &str, msg: String| errors.push(format!("{file}: field {field}: {msg}"));
    if !valid_id(&raw.id) {
        err(
            "id",
            format!(
                "`{}` is not a valid id (lowercase a-z, 0-9, '-', '_')",
                raw.id
            ),
        );
    }
    for (field, value) in [
        ("name", &raw.name),
        ("label", &raw.label),
        ("policy", &raw.policy),
    ] {
        if value.trim().is_empty() {
            err(field, "must not be empty".into());
        }
    }
    for (i, a) in raw.aliases.iter().enumerate() {
        if a.trim().is_empty() {
            err(&format!("aliases[{i}]"), "must not be empty".into());
        }
    }
    if let Some(h) = &raw.hotline
        && (h.is_empty() || !h.chars().all(|c| c.is_ascii_digit() || c == '-'))
    {
        err(
            "hotline",
            format!("`{h}` is not a phone number (digits and '-')"),
        );
    }
    for (field, value, source_field, source) in [
        (
            "hotline",
            &raw.hotline,
            "hotline_source",
            &raw.hotline_source,
        ),
        (
            "counters",
            &raw.counters,
            "counters_source",
            &raw.counters_source,
        ),
    ] {
        match (value, source) {
            (Some(_), None) => err(
                source_field,
                format!("missing: `{field}` needs the seed it comes from, like \"000 咨询电话\""),
            ),
            (None, Some(_)) => err(source_field, format!("a source without `{field}`")),
            (Some(v), Some(s)) => {
                if v.trim().is_empty() {
                    err(field, "must not be empty".into());
                }
                if !cites_seed(s) {
                    err(
                        source_field,
                        format!(
                            "must start with a seed id and a space, like \"000 咨询电话\" (got {s:?})"
                        ),
                    );
                }
            }
            (None, None) => {}
        }
    }
    let mut channels = BTreeMap::new();
    for (id, t) in raw.channels {
        let at = format!("channels.{id}");
        if !valid_id(&id) {
            err(
                &at,
                "not a valid channel id (lowercase a-z, 0-9, '-')".into(),
            );
        }
        if ChannelId::parse(&id).is_some() {
            err(
                &at,
                "checklist.toml already defines this channel; list it in `filing_channels` only"
                    .into(),
            );
        }
        if t.text.trim().is_empty() || t.text.contains('\n') {
            err(&format!("{at}.text"), "must be one non-empty line".into());
        } else if t.text.chars().count() > MAX_TEXT_CHARS {
            err(
                &format!("{at}.text"),
                format!("must be at most {MAX_TEXT_CHARS} characters"),
            );
        }
        if !cites_seed(&t.source) {
            err(
                &format!("{at}.source"),
                format!(
                    "must start with a seed id and a space, like \"001 线上渠道\" (got {:?})",
                    t.source
                ),
            );
        }
        channels.insert(
            id,
            Text {
                text: t.text,
                source: t.source,
            },
        );
    }
    for (i, c) in raw.filing_channels.iter().enumerate() {
        let at = format!("filing_channels[{i}]");
        match ChannelId::parse(c) {
            Some(general) if GENERAL_CHANNELS.contains(&general) => err(
                &at,
                format!("`{c}` applies to every region; list only the region's own channels"),
            ),
            Some(_) => {}
            None if channels.contains_key(c) => {}
            None => err(
                &at,
                format!(
                    "unknown channel `{c}`: use `wechat-suzhou`, `esscard-app` or define it under [channels.{c}]"
                ),
            ),
        }
    }
    if let Some(shard) = &raw.shard
        && !valid_id(shard)
    {
        err(
            "shard",
            format!("`{shard}` is not a valid id (lowercase a-z, 0-9, '-', '_')"),
        );
    }
    for (intent, reply) in &raw.replies {
        if reply.trim().is_empty() {
            err(&format!("replies.{intent}"), "must not be empty".into());
        }
    }
    Some(Region {
        id: raw.id,
        name: raw.name,
        label: raw.label,
        order: raw.order.unwrap_or(100),
        aliases: raw.aliases,
        policy: raw.policy,
        hotline: raw.hotline,
        hotline_source: raw.hotline_source,
        counters: raw.counters,
        counters_source: raw.counters_source,
        filing_channels: raw.filing_channels,
        temporary_reduced_ratio: raw.temporary_reduced_ratio,
        shard: raw.shard.filter(|s| !s.is_empty()),
        replies: raw.replies,
        channels,
        file: path.to_path_buf(),
    })
}

/// The region's policy file exists and is valid, and has the 80% factor when the region says
/// the 80% rule applies.
fn check_policy(file: &str, region: &Region, knowledge_dir: &Path, errors: &mut Vec<String>) {
    if !valid_id(&region.policy) {
        return;
    }
    let path = knowledge_dir
        .join("policies")
        .join(format!("{}.toml", region.policy));
    if !path.is_file() {
        errors.push(format!(
            "{file}: field policy: no policy file policies/{}.toml",
            region.policy
        ));
        return;
    }
    // a broken policy file is reported by the policy loader, with its own fields
    let Ok(policy) = Policy::from_file(&path) else {
        return;
    };
    // the checklist's warning and the estimate's factor must tell the same story
    match (
        region.temporary_reduced_ratio,
        policy.cross_region.temporary_factor,
    ) {
        (true, None) => errors.push(format!(
            "{file}: field temporary_reduced_ratio: the 80% rule applies, but policies/{}.toml has no cross_region.temporary_factor",
            region.policy
        )),
        (false, Some(f)) => errors.push(format!(
            "{file}: field temporary_reduced_ratio: policies/{}.toml reduces temporary trips (temporary_factor {f}), so set `temporary_reduced_ratio = true`",
            region.policy
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Regions {
        Regions::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge"))
            .unwrap_or_else(|es| panic!("{}", es.join("\n")))
    }

    #[test]
    fn shipped_regions_load() {
        let r = shipped();
        assert_eq!(r.ids().collect::<Vec<_>>(), ["suzhou", "zhangjiagang"]);
        for region in r.iter() {
            assert!(
                region.temporary_reduced_ratio,
                "{}: the 80% rule",
                region.id
            );
            assert_eq!(region.policy, region.id);
            assert!(region.replies.contains_key("human"), "{}", region.id);
        }
        let zjg = r.get("zhangjiagang").unwrap();
        assert_eq!(zjg.hotline.as_deref(), Some("0512-12333"));
        assert_eq!(zjg.filing_channels, ["esscard-app"]);
        assert_eq!(r.get("suzhou").unwrap().filing_channels, ["wechat-suzhou"]);
    }

    /// A knowledge folder with the shipped policies and the given region files.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        for p in ["suzhou", "zhangjiagang"] {
            std::fs::copy(
                root.join(format!("policies/{p}.toml")),
                dir.path().join(format!("policies/{p}.toml")),
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("policies/plain.toml"),
            "id = \"plain\"\nname = \"x\"\neffective = \"x\"\nsources = [\"x\"]\nnote = \"无参数\"\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join(DIR)).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(DIR).join(name), text).unwrap();
        }
        dir
    }

    fn errors(files: &[(&str, &str)]) -> Vec<String> {
        let dir = folder(files);
        Regions::load_dir(dir.path()).unwrap_err()
    }

    #[test]
    fn errors_name_file_and_field() {
        let es = errors(&[(
            "kunshan.toml",
            r#"
id = "kunshan"
name = "昆山市"
label = "苏州"
policy = "plain"
hotline = "0512-5555x"
counters = "昆山市医保中心"
filing_channels = ["counter", "kunshan-app", "wechat-suzhou"]
temporary_reduced_ratio = true
[replies]
human = " "
[channels.esscard-app]
text = "x"
source = "000 x"
"#,
        )]);
        let want = [
            "regions/kunshan.toml: field hotline: `0512-5555x` is not a phone number",
            "regions/kunshan.toml: field hotline_source: missing",
            "regions/kunshan.toml: field counters_source: missing",
            "regions/kunshan.toml: field channels.esscard-app: checklist.toml already defines",
            "regions/kunshan.toml: field filing_channels[0]: `counter` applies to every region",
            "regions/kunshan.toml: field filing_channels[1]: unknown channel `kunshan-app`",
            "regions/kunshan.toml: field replies.human: must not be empty",
            "regions/kunshan.toml: field temporary_reduced_ratio: the 80% rule applies, but policies/plain.toml has no cross_region.temporary_factor",
        ];
        for w in want {
            assert!(
                es.iter().any(|e| e.starts_with(w)),
                "missing {w:?} in {es:#?}"
            );
        }
        // unknown fields, bad ids, a missing policy, a file name that is not the id
        let es = errors(&[(
            "a.toml",
            "id = \"b\"\nname = \"x\"\nlabel = \"y\"\npolicy = \"nope\"\n",
        )]);
        assert!(
            es.iter()
                .any(|e| e == "regions/a.toml: field policy: no policy file policies/nope.toml"),
            "{es:#?}"
        );
        assert!(
            es.iter()
                .any(|e| e.starts_with("regions/a.toml: field id: the id `b` must match")),
            "{es:#?}"
        );
        let es = errors(&[(
            "a.toml",
            "id = \"a\"\nname = \"x\"\nlabel = \"y\"\npolicy = \"plain\"\nphone = \"1\"\n",
        )]);
        assert!(
            es[0].starts_with("regions/a.toml: ") && es[0].contains("unknown field `phone`"),
            "{es:#?}"
        );
        // two regions may not share a label or an alias
        let one =
            "id = \"a\"\nname = \"x\"\nlabel = \"甲\"\naliases = [\"甲地\"]\npolicy = \"plain\"\n";
        let two =
            "id = \"b\"\nname = \"x\"\nlabel = \"乙\"\naliases = [\"甲地\"]\npolicy = \"plain\"\n";
        let es = errors(&[("a.toml", one), ("b.toml", two)]);
        assert_eq!(
            es,
            ["regions/b.toml: field aliases: `甲地` is already used by region `a`"]
        );
        // an empty folder
        let es = errors(&[]);
        assert!(es[0].contains("no region file"), "{es:#?}");
    }
}
