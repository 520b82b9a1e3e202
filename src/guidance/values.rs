//! Closed sets of values shared by the checklist and the estimate: one macro for every set
//! (slot values and ids), and the slot values both contracts use (checklist.md and
//! estimate.md name them alike).

/// A value of a closed set, generically (for code that walks several sets, such as the
/// checklist texts loader).
pub(crate) trait Keyword: Copy {
    /// As written in JSON and TOML.
    fn name(self) -> &'static str;
    /// What users call it.
    fn gist(self) -> &'static str;
}

/// A closed set of ids or slot values, each with what users call it.
macro_rules! slot_values {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $value:literal : $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every value as written in JSON and TOML.
            pub const VALUES: &'static [&'static str] = &[$($value),+];

            /// The value as written in JSON and TOML.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value),+
                }
            }

            /// What users call it (Chinese).
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }

            pub fn parse(value: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == value)
            }

            /// The allowed values for an error message: `"a"（甲）、"b"（乙）`.
            pub fn hint() -> String {
                Self::ALL
                    .iter()
                    .map(|v| format!("\"{}\"（{}）", v.as_str(), v.label()))
                    .collect::<Vec<_>>()
                    .join("、")
            }
        }

        impl $crate::guidance::values::Keyword for $name {
            fn name(self) -> &'static str {
                self.as_str()
            }
            fn gist(self) -> &'static str {
                self.label()
            }
        }
    };
}
pub(crate) use slot_values;

slot_values!(
    /// 参保险种 (职工医保 / 城乡居民医保).
    Scheme {
        Employee = "employee": "职工医保",
        Resident = "resident": "城乡居民医保",
    }
);

slot_values!(
    /// 在职 / 退休 (employee scheme).
    Employment {
        Working = "working": "在职",
        Retired = "retired": "退休",
    }
);

slot_values!(
    /// 就医地, relative to Jiangsu.
    CareLocation {
        InProvince = "in_province": "江苏省内其他设区市",
        Shanghai = "shanghai": "上海",
        YangtzeDelta = "yangtze_delta": "浙江或安徽",
        OtherProvince = "other_province": "其他省份",
    }
);

slot_values!(
    /// The kind of cross-region filing.
    FilingType {
        ResettledRetiree = "resettled_retiree": "异地安置退休",
        LongTermResident = "long_term_resident": "异地长期居住",
        PostedWorker = "posted_worker": "常驻异地工作",
        Referral = "referral": "异地转诊",
        Temporary = "temporary": "其他临时外出就医",
        None = "none": "没有备案",
    }
);
