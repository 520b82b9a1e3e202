//! The place gazetteer (`knowledge/places.toml`): names of places inside the insured regions
//! (苏州大市) and outside them (by the `care_location` value they fall under), hospitals named
//! without their city, words that stand for a place ("老家", "外地"), and the cues around a
//! place that give it its role in a sentence (insured there, treated there, living there,
//! coming from there, the agency there). Validated at load; matched by one automaton.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Deserialize;

use crate::text::normalize;

/// Where a named place lies, as far as cross-region care is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Area {
    /// Inside an insured region of ours (its id): 苏州大市.
    Inside(String),
    /// The whole of 苏州大市 ("苏州大市"), no one region of it.
    WholeCity,
    /// Outside, under this `care_location` value.
    Outside(String),
    /// The person's home place ("老家"): whatever the message or conversation says it is.
    Home,
    /// Away from home, province unknown ("外地").
    Away,
    /// The place already being talked about ("当地", "那边").
    Here,
    /// Abroad, or Hong Kong, Macao, Taiwan: outside the mainland's settlement network.
    Abroad,
    /// A name that contains a place but is none ("江苏医保云", "苏州大学").
    NotPlace,
}

/// A place named in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// The name as written (normalised), e.g. "周口", "仁济".
    pub name: String,
    /// The place it stands for: the hospital's city for a hospital.
    pub place: String,
    pub area: Area,
    pub hospital: bool,
    /// Byte offsets in the normalised text.
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    inside: BTreeMap<String, Names>,
    outside: BTreeMap<String, Names>,
    #[serde(default)]
    hospitals: BTreeMap<String, String>,
    generic: Generic,
    roles: RolesRaw,
    #[serde(default)]
    not_places: Option<Names>,
    #[serde(default)]
    abroad: Option<Names>,
    #[serde(default)]
    typos: BTreeMap<String, String>,
    #[serde(default)]
    dialect: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Names {
    names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Generic {
    home: Vec<String>,
    away: Vec<String>,
    here: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesRaw {
    insured: Cues,
    care: Cues,
    residence: Cues,
    origin: Cues,
    agency: Cues,
}

/// The cue phrases of one role (normalised at load).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cues {
    #[serde(default)]
    pub before: Vec<String>,
    #[serde(default)]
    pub after: Vec<String>,
    #[serde(default)]
    pub near: Vec<String>,
    #[serde(default)]
    pub paid_after: Vec<String>,
}

/// The cues of every role.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    pub insured: Cues,
    pub care: Cues,
    pub residence: Cues,
    pub origin: Cues,
    pub agency: Cues,
}

/// The gazetteer, ready to match.
#[derive(Debug, Clone)]
pub struct Places {
    /// Pattern `i` of `matcher` is `entries[i]`.
    entries: Vec<(String, String, Area, bool)>,
    matcher: AhoCorasick,
    pub roles: Roles,
    /// Misspellings and the words meant, one automaton over the misspellings.
    typos: Option<(AhoCorasick, Vec<String>)>,
}

/// The care_location values (checklist.md) a place outside may fall under.
const CARE_VALUES: [&str; 4] = ["in_province", "shanghai", "yangtze_delta", "other_province"];

impl Places {
    /// Loads `places.toml` from the knowledge folder. `regions` are the insured regions
    /// (knowledge/regions/) with the names their files give them (name, label, aliases): every
    /// `inside` key must be one, and a region's own names are its places whatever
    /// `places.toml` says (a region added with files alone is found in messages). All
    /// problems at once.
    pub fn load(root: &Path, regions: &[(String, Vec<String>)]) -> Result<Places, Vec<String>> {
        const F: &str = "places.toml";
        let mut found = Vec::new();
        let raw: Option<Raw> = crate::knowledge::read_toml(root, F, &mut found);
        let mut errors: Vec<String> = found.iter().map(ToString::to_string).collect();
        let Some(raw) = raw else {
            return Err(errors);
        };
        let mut entries: Vec<(String, String, Area, bool)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        // the regions' own names first: they win over a listing under another region
        let mut own: HashSet<String> = HashSet::new();
        let mut own_names: BTreeMap<String, Area> = BTreeMap::new();
        for (region, names) in regions {
            for n in names {
                let norm = normalize(n);
                // only plain place names ("昆山"), not phrases ("昆山参保")
                if norm.is_empty()
                    || ["参保", "医保", "的", "社保"]
                        .iter()
                        .any(|w| norm.contains(w))
                    || !own.insert(norm.clone())
                {
                    continue;
                }
                seen.insert(norm.clone());
                own_names.insert(norm.clone(), Area::Inside(region.clone()));
                entries.push((norm, n.clone(), Area::Inside(region.clone()), false));
            }
        }
        let mut add = |name: &str,
                       place: String,
                       area: Area,
                       hospital: bool,
                       field: &str,
                       errors: &mut Vec<String>| {
            let n = normalize(name);
            if n.is_empty() {
                errors.push(format!("{F}: field `{field}`: an empty name"));
            } else if !seen.insert(n.clone()) {
                errors.push(format!("{F}: field `{field}`: `{name}` is listed twice"));
            } else {
                entries.push((n, place, area, hospital));
            }
        };
        for (region, names) in &raw.inside {
            if !regions.iter().any(|(r, _)| r == region) {
                errors.push(format!(
                    "{F}: field `inside.{region}`: no region `{region}` in regions/"
                ));
            }
            for n in names.names.iter().filter(|n| !own.contains(&normalize(n))) {
                let area = if normalize(n) == normalize("苏州大市") {
                    Area::WholeCity
                } else {
                    Area::Inside(region.clone())
                };
                add(
                    n,
                    n.clone(),
                    area,
                    false,
                    &format!("inside.{region}"),
                    &mut errors,
                );
            }
        }
        for (value, names) in &raw.outside {
            if !CARE_VALUES.contains(&value.as_str()) {
                errors.push(format!(
                    "{F}: field `outside.{value}`: not a care_location value (one of {})",
                    CARE_VALUES.join(", ")
                ));
            }
            for n in &names.names {
                add(
                    n,
                    n.clone(),
                    Area::Outside(value.clone()),
                    false,
                    &format!("outside.{value}"),
                    &mut errors,
                );
            }
        }
        // a hospital stands for its city, which must be a place above
        let mut cities: BTreeMap<String, Area> = own_names.clone();
        for (region, names) in &raw.inside {
            for n in &names.names {
                cities.insert(normalize(n), Area::Inside(region.clone()));
            }
        }
        for (value, names) in &raw.outside {
            for n in &names.names {
                cities.insert(normalize(n), Area::Outside(value.clone()));
            }
        }
        for (hospital, city) in &raw.hospitals {
            match cities.get(&normalize(city)) {
                Some(area) => add(
                    hospital,
                    city.clone(),
                    area.clone(),
                    true,
                    &format!("hospitals.{hospital}"),
                    &mut errors,
                ),
                None => errors.push(format!(
                    "{F}: field `hospitals.{hospital}`: `{city}` is not a place of `inside` or `outside`"
                )),
            }
        }
        let none = Vec::new();
        for (list, area, field) in [
            (&raw.generic.home, Area::Home, "generic.home"),
            (&raw.generic.away, Area::Away, "generic.away"),
            (&raw.generic.here, Area::Here, "generic.here"),
            (
                raw.not_places.as_ref().map_or(&none, |n| &n.names),
                Area::NotPlace,
                "not_places.names",
            ),
            (
                raw.abroad.as_ref().map_or(&none, |n| &n.names),
                Area::Abroad,
                "abroad.names",
            ),
        ] {
            for n in list {
                add(n, n.clone(), area.clone(), false, field, &mut errors);
            }
        }
        let norm = |v: &[String]| -> Vec<String> {
            let mut out: Vec<String> = v
                .iter()
                .map(|c| normalize(c))
                .filter(|c| !c.is_empty())
                .collect();
            // the longest first: "医保是在" before "在"
            out.sort_by_key(|c| std::cmp::Reverse(c.chars().count()));
            out
        };
        let cues = |c: &Cues| Cues {
            before: norm(&c.before),
            after: norm(&c.after),
            near: norm(&c.near),
            paid_after: norm(&c.paid_after),
        };
        let roles = Roles {
            insured: cues(&raw.roles.insured),
            care: cues(&raw.roles.care),
            residence: cues(&raw.roles.residence),
            origin: cues(&raw.roles.origin),
            agency: cues(&raw.roles.agency),
        };
        for (name, c) in [
            ("insured", &roles.insured),
            ("care", &roles.care),
            ("residence", &roles.residence),
        ] {
            if c.before.is_empty() && c.after.is_empty() {
                errors.push(format!(
                    "{F}: field `roles.{name}`: needs `before` or `after` cues"
                ));
            }
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(entries.iter().map(|(n, ..)| n.as_str()));
        let matcher = match matcher {
            Ok(m) => m,
            Err(e) => {
                errors.push(format!("{F}: the names cannot be matched: {e}"));
                return Err(errors);
            }
        };
        let mut wrong = Vec::new();
        let mut right = Vec::new();
        for (w, r) in &raw.typos {
            if w.trim().is_empty() || r.trim().is_empty() || w == r {
                errors.push(format!(
                    "{F}: field `typos.{w}`: needs a misspelling and a different word meant"
                ));
            }
            wrong.push(w.clone());
            right.push(r.clone());
        }
        for (w, r) in &raw.dialect {
            if w.trim().is_empty() || r.trim().is_empty() {
                errors.push(format!(
                    "{F}: field `dialect.{w}`: needs a dialect word and the word meant"
                ));
            }
            if raw.typos.contains_key(w) {
                errors.push(format!(
                    "{F}: field `dialect.{w}`: is also listed under `typos`"
                ));
            }
            wrong.push(w.clone());
            right.push(r.clone());
        }
        let typos = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&wrong)
            .ok()
            .map(|a| (a, right));
        if errors.is_empty() {
            Ok(Places {
                entries,
                matcher,
                roles,
                typos,
            })
        } else {
            Err(errors)
        }
    }

    /// The message with its common misspellings and dialect words read as the words meant
    /// ("被案" → "备案", "伊" → "她").
    pub fn correct(&self, message: &str) -> String {
        match &self.typos {
            Some((ac, right)) => ac.replace_all(message, right),
            None => message.to_string(),
        }
    }

    /// Every place named in the normalised text, left to right (the longest name at a place;
    /// names that are no place, such as "江苏医保云", are left out).
    pub fn find(&self, norm: &str) -> Vec<Mention> {
        self.matcher
            .find_iter(norm)
            .filter(|m| self.entries[m.pattern().as_usize()].2 != Area::NotPlace)
            .map(|m| {
                let (name, place, area, hospital) = &self.entries[m.pattern().as_usize()];
                Mention {
                    name: name.clone(),
                    place: place.clone(),
                    area: area.clone(),
                    hospital: *hospital,
                    start: m.start(),
                    end: m.end(),
                }
            })
            .collect()
    }

    /// The area of a place name (normalised), if the gazetteer knows it.
    pub fn area_of(&self, name: &str) -> Option<&Area> {
        let n = normalize(name);
        self.entries
            .iter()
            .find(|(e, ..)| *e == n)
            .map(|(_, _, a, _)| a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_places_load_and_match_longest_names() {
        let a = crate::assistant::shipped();
        let p = &a.reader.places;
        let found: Vec<(String, Area)> = p
            .find(&normalize(
                "我老公张家港医保，在南京鼓楼医院住院，后来转到上海仁济",
            ))
            .into_iter()
            .map(|m| (m.place, m.area))
            .collect();
        assert_eq!(
            found,
            vec![
                ("张家港".to_string(), Area::Inside("zhangjiagang".into())),
                ("南京".to_string(), Area::Outside("in_province".into())),
                ("南京".to_string(), Area::Outside("in_province".into())),
                ("上海".to_string(), Area::Outside("shanghai".into())),
                ("上海".to_string(), Area::Outside("shanghai".into())),
            ]
        );
        assert_eq!(p.area_of("常熟"), Some(&Area::Inside("suzhou".into())));
        assert_eq!(p.area_of("苏州大市"), Some(&Area::WholeCity));
    }

    #[test]
    fn a_broken_file_names_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("places.toml"),
            "[inside.nowhere]\nnames = [\"甲\", \"甲\"]\n[outside.mars]\nnames = [\"乙\"]\n\
             [hospitals]\n\"某医院\" = \"丙\"\n[generic]\nhome = []\naway = []\nhere = []\n\
             [roles.insured]\n[roles.care]\nbefore = [\"去\"]\n[roles.residence]\nafter = [\"住\"]\n\
             [roles.origin]\n[roles.agency]\n",
        )
        .unwrap();
        let errors = Places::load(
            dir.path(),
            &[("suzhou".to_string(), vec!["苏州".to_string()])],
        )
        .unwrap_err()
        .join("\n");
        for needle in [
            "places.toml: field `inside.nowhere`: no region `nowhere`",
            "places.toml: field `inside.nowhere`: `甲` is listed twice",
            "places.toml: field `outside.mars`: not a care_location value",
            "places.toml: field `hospitals.某医院`: `丙` is not a place",
            "places.toml: field `roles.insured`: needs `before` or `after` cues",
        ] {
            assert!(errors.contains(needle), "{needle} not in:\n{errors}");
        }
    }
}
