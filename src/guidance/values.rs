//! Closed sets of values shared by the checklist and the estimate: one macro for every set
//! (slot values and ids), and the slot values both contracts use (checklist.md and
//! estimate.md name them alike), and what both the checklist and the region files name
//! (the channels, a text with its source), so neither imports the other.

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
        // the schema (the API's document): a string, one of the values as written in JSON
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
        $(#[$meta])*
        pub enum $name {
            $(#[schema(rename = $value)] $variant),+
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

/// The longest text, in characters: one line of a chat bubble.
pub const MAX_TEXT_CHARS: usize = 100;

/// A text shown to users, with the source it comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Text {
    pub text: String,
    pub source: String,
}

slot_values!(
    /// The channels, in the order of checklist.md.
    ChannelId {
        Counter = "counter": "参保地医保经办机构窗口",
        JiangsuApp = "jiangsu-app": "江苏医保云APP/小程序",
        NationalApp = "national-app": "国家医保服务平台APP",
        NationalMiniprogram = "national-miniprogram": "国家异地就医备案小程序",
        WechatSuzhou = "wechat-suzhou": "“苏州医保”公众号",
        EsscardApp = "esscard-app": "电子社保卡APP",
        Hospital = "hospital": "具有转诊资质的医疗机构",
    }
);
