//! Vietnamese (the default) and English: which one a request gets, every word the pages
//! print, and how numbers and dates are written in each.
//!
//! The words are one struct per language, so a label missing in one language does not
//! compile.

use axum::http::HeaderMap;
use chrono::NaiveDate;
use tiendo_domain::alert::{AlertKind, AlertState};
use tiendo_domain::plan::Comparator;
use tiendo_domain::progress::{Category, Weather};
use tiendo_domain::trajectory::Status;
use tiendo_domain::RejectReason;

/// A page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    /// The `lang` query value and the `<html lang>` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// The language a `lang` query value names; `None` for anything else.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language the browser prefers among the two, from `Accept-Language` (by q-value,
    /// then order); Vietnamese when it names neither.
    pub fn negotiate(headers: &HeaderMap) -> Lang {
        let Some(header) = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()) else {
            return Lang::Vi;
        };
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or_default();
            let Some(lang) = Lang::parse(primary) else { continue };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Vi, |(_, l)| l)
    }

    /// Every word of the pages in this language.
    pub fn text(self) -> &'static Text {
        match self {
            Lang::Vi => &VI,
            Lang::En => &EN,
        }
    }

    /// A percentage with one decimal: `72,5 %` in Vietnamese, `72.5%` in English.
    pub fn percent(self, v: f64) -> String {
        match self {
            Lang::Vi => format!("{} %", format!("{v:.1}").replace('.', ",")),
            Lang::En => format!("{v:.1}%"),
        }
    }

    /// Percentage points with a sign: `−2,6 điểm %`, `−2.6 pp`.
    pub fn points(self, v: f64) -> String {
        let sign = if v < 0.0 { "−" } else { "+" };
        let n = format!("{:.1}", v.abs());
        match self {
            Lang::Vi => format!("{sign}{} điểm %", n.replace('.', ",")),
            Lang::En => format!("{sign}{n} pp"),
        }
    }

    /// A ratio 0..1 as a whole percentage.
    pub fn ratio(self, v: f64) -> String {
        match self {
            Lang::Vi => format!("{:.0} %", 100.0 * v),
            Lang::En => format!("{:.0}%", 100.0 * v),
        }
    }

    /// A score with a sign and one decimal.
    pub fn score(self, v: f64) -> String {
        let s = format!("{v:+.1}").replace('-', "−");
        match self {
            Lang::Vi => s.replace('.', ","),
            Lang::En => s,
        }
    }

    /// A date: `31/12/2025` in Vietnamese, `2025-12-31` in English.
    pub fn date(self, d: NaiveDate) -> String {
        match self {
            Lang::Vi => d.format("%d/%m/%Y").to_string(),
            Lang::En => d.to_string(),
        }
    }

    pub fn status(self, s: Status) -> &'static str {
        let t = self.text();
        match s {
            Status::Achieved => t.status_achieved,
            Status::OnTrack => t.status_on_track,
            Status::AtRisk => t.status_at_risk,
            Status::Behind => t.status_behind,
            Status::Missed => t.status_missed,
            Status::Monitored => t.status_monitored,
            Status::Incomplete => t.status_incomplete,
        }
    }

    pub fn category(self, c: Category) -> &'static str {
        let t = self.text();
        match c {
            Category::TargetAchieved => t.progress_target_achieved,
            Category::SubstantialProgress => t.progress_substantial,
            Category::ModerateProgress => t.progress_moderate,
            Category::LimitedProgress => t.progress_limited,
            Category::Deterioration => t.progress_deterioration,
            Category::NotAvailable => t.not_available,
        }
    }

    pub fn weather(self, w: Weather) -> &'static str {
        let t = self.text();
        match w {
            Weather::Sun => t.outlook_sun,
            Weather::PartlyCloudy => t.outlook_partly_cloudy,
            Weather::Cloudy => t.outlook_cloudy,
            Weather::Thunderstorm => t.outlook_thunderstorm,
            Weather::NotAvailable => t.not_available,
        }
    }

    pub fn kind(self, k: AlertKind) -> &'static str {
        let t = self.text();
        match k {
            AlertKind::Trajectory => t.kind_trajectory,
            AlertKind::Forecast => t.kind_forecast,
            AlertKind::Verdict => t.kind_verdict,
        }
    }

    pub fn state(self, s: AlertState) -> &'static str {
        let t = self.text();
        match s {
            AlertState::Firing => t.state_firing,
            AlertState::Resolved => t.state_resolved,
        }
    }

    pub fn comparator(self, c: Comparator) -> &'static str {
        let t = self.text();
        match c {
            Comparator::AtLeast => t.at_least,
            Comparator::MoreThan => t.more_than,
            Comparator::AtMost => t.at_most,
            Comparator::LessThan => t.less_than,
        }
    }

    /// What a rejection reason means, in words a clerk can act on.
    pub fn reason(self, r: RejectReason) -> &'static str {
        let t = self.text();
        match r {
            RejectReason::Malformed => t.reason_malformed,
            RejectReason::InvalidField => t.reason_invalid_field,
            RejectReason::UnknownIndicator => t.reason_unknown_indicator,
            RejectReason::UnknownOrgUnit => t.reason_unknown_org_unit,
            RejectReason::InactiveOrgUnit => t.reason_inactive_org_unit,
            RejectReason::Forbidden => t.reason_forbidden,
            RejectReason::FuturePeriod => t.reason_future_period,
            RejectReason::OutOfRange => t.reason_out_of_range,
        }
    }
}

/// Every word the pages print, in one language.
pub struct Text {
    pub site: &'static str,
    pub overview: &'static str,
    pub alerts: &'static str,
    pub api: &'static str,
    pub other_language: &'static str,
    pub live: &'static str,
    pub live_paused: &'static str,
    pub bus_down: &'static str,
    pub database_down: &'static str,
    pub generated: &'static str,
    pub indicator: &'static str,
    pub unit: &'static str,
    pub level: &'static str,
    pub period: &'static str,
    pub value: &'static str,
    pub expected: &'static str,
    pub gap: &'static str,
    pub target: &'static str,
    pub status: &'static str,
    pub progress: &'static str,
    pub score: &'static str,
    pub outlook: &'static str,
    pub projected: &'static str,
    pub attainment: &'static str,
    pub reporting_rate: &'static str,
    pub coverage: &'static str,
    pub note: &'static str,
    pub department: &'static str,
    pub departments: &'static str,
    pub owners: &'static str,
    pub plan: &'static str,
    pub scope: &'static str,
    pub target_date: &'static str,
    pub plan_closed: &'static str,
    pub plan_open: &'static str,
    pub sort_by_gap: &'static str,
    pub sort_by_catalog: &'static str,
    pub no_figure: &'static str,
    pub not_available: &'static str,
    pub chart: &'static str,
    pub chart_desc: &'static str,
    pub legend_figures: &'static str,
    pub legend_path: &'static str,
    pub legend_band: &'static str,
    pub legend_trend: &'static str,
    pub legend_target: &'static str,
    pub every_unit: &'static str,
    pub no_plan: &'static str,
    pub other_plans: &'static str,
    pub valid: &'static str,
    pub since: &'static str,
    pub until: &'static str,
    pub always: &'static str,
    pub records: &'static str,
    pub parents: &'static str,
    pub children: &'static str,
    pub successors: &'static str,
    pub retired: &'static str,
    pub none: &'static str,
    pub rejections: &'static str,
    pub reason: &'static str,
    pub detail: &'static str,
    pub event_id: &'static str,
    pub time: &'static str,
    pub overdue: &'static str,
    pub due: &'static str,
    pub received: &'static str,
    pub missing: &'static str,
    pub firing_now: &'static str,
    pub history: &'static str,
    pub kind: &'static str,
    pub state: &'static str,
    pub no_alerts: &'static str,
    pub no_rejections: &'static str,
    pub no_overdue: &'static str,
    pub not_found: &'static str,
    pub not_found_detail: &'static str,
    pub bad_request: &'static str,
    pub unavailable: &'static str,
    pub unavailable_detail: &'static str,
    pub back_home: &'static str,
    pub status_achieved: &'static str,
    pub status_on_track: &'static str,
    pub status_at_risk: &'static str,
    pub status_behind: &'static str,
    pub status_missed: &'static str,
    pub status_monitored: &'static str,
    pub status_incomplete: &'static str,
    pub progress_target_achieved: &'static str,
    pub progress_substantial: &'static str,
    pub progress_moderate: &'static str,
    pub progress_limited: &'static str,
    pub progress_deterioration: &'static str,
    pub outlook_sun: &'static str,
    pub outlook_partly_cloudy: &'static str,
    pub outlook_cloudy: &'static str,
    pub outlook_thunderstorm: &'static str,
    pub kind_trajectory: &'static str,
    pub kind_forecast: &'static str,
    pub kind_verdict: &'static str,
    pub state_firing: &'static str,
    pub state_resolved: &'static str,
    pub at_least: &'static str,
    pub more_than: &'static str,
    pub at_most: &'static str,
    pub less_than: &'static str,
    pub reason_malformed: &'static str,
    pub reason_invalid_field: &'static str,
    pub reason_unknown_indicator: &'static str,
    pub reason_unknown_org_unit: &'static str,
    pub reason_inactive_org_unit: &'static str,
    pub reason_forbidden: &'static str,
    pub reason_future_period: &'static str,
    pub reason_out_of_range: &'static str,
}

pub static VI: Text = Text {
    site: "Tiến độ chuyển đổi số",
    overview: "Tổng quan",
    alerts: "Cảnh báo",
    api: "API JSON",
    other_language: "English",
    live: "Cập nhật trực tiếp",
    live_paused: "Mất kết nối cập nhật trực tiếp",
    bus_down: "Không kết nối được hệ thống tin nhắn (NATS): số liệu dưới đây là bản đã lưu, trang sẽ không tự cập nhật cho đến khi kết nối lại.",
    database_down: "Không đọc được cơ sở dữ liệu.",
    generated: "Tạo lúc",
    indicator: "Chỉ tiêu",
    unit: "Đơn vị",
    level: "Cấp",
    period: "Kỳ",
    value: "Số liệu",
    expected: "Theo lộ trình",
    gap: "Chênh lệch",
    target: "Mục tiêu",
    status: "Trạng thái",
    progress: "Tiến bộ",
    score: "Điểm",
    outlook: "Triển vọng",
    projected: "Dự báo đến hạn",
    attainment: "Dự kiến đạt",
    reporting_rate: "Tỷ lệ báo cáo",
    coverage: "Độ phủ báo cáo",
    note: "Ghi chú",
    department: "Sở, ngành",
    departments: "Sở, ngành",
    owners: "Đơn vị chủ trì",
    plan: "Kế hoạch",
    scope: "Địa bàn",
    target_date: "Hạn",
    plan_closed: "đã kết thúc",
    plan_open: "đang thực hiện",
    sort_by_gap: "Xếp theo chênh lệch",
    sort_by_catalog: "Xếp theo danh mục",
    no_figure: "Chưa có số liệu",
    not_available: "Chưa đủ dữ liệu",
    chart: "Diễn biến",
    chart_desc: "Số liệu từng kỳ của địa bàn kế hoạch, lộ trình thẳng từ số liệu gốc đến mục tiêu, dải dung sai, xu hướng dự báo đến hạn và mục tiêu.",
    legend_figures: "Số liệu từng kỳ (chấm tròn)",
    legend_path: "Lộ trình từ số liệu gốc đến mục tiêu (nét liền)",
    legend_band: "Dải dung sai (vùng tô)",
    legend_trend: "Xu hướng dự báo đến hạn (nét đứt)",
    legend_target: "Mục tiêu (hình thoi)",
    every_unit: "Từng đơn vị",
    no_plan: "Chưa có kế hoạch nào theo dõi chỉ tiêu này.",
    other_plans: "Các kế hoạch",
    valid: "Hiệu lực",
    since: "từ",
    until: "đến hết",
    always: "luôn",
    records: "Đơn vị mang mã này",
    parents: "Trực thuộc",
    children: "Đơn vị trực thuộc",
    successors: "Đơn vị kế thừa",
    retired: "đã giải thể",
    none: "Không có",
    rejections: "Báo cáo bị từ chối gần đây",
    reason: "Lý do",
    detail: "Chi tiết",
    event_id: "Mã sự kiện",
    time: "Thời điểm",
    overdue: "Báo cáo quá hạn",
    due: "Hạn nộp",
    received: "Đã nhận",
    missing: "Còn thiếu",
    firing_now: "Cảnh báo đang bật",
    history: "Lịch sử gần đây",
    kind: "Loại",
    state: "Tình trạng",
    no_alerts: "Không có cảnh báo nào đang bật.",
    no_rejections: "Không có báo cáo nào bị từ chối gần đây.",
    no_overdue: "Không có báo cáo quá hạn.",
    not_found: "Không tìm thấy trang",
    not_found_detail: "Không có trang, chỉ tiêu, đơn vị hay sở, ngành nào như vậy.",
    bad_request: "Yêu cầu không hợp lệ",
    unavailable: "Tạm thời không xem được",
    unavailable_detail: "Không đọc được cơ sở dữ liệu. Trang sẽ hiển thị lại khi cơ sở dữ liệu hoạt động.",
    back_home: "Về trang tổng quan",
    status_achieved: "Đạt mục tiêu",
    status_on_track: "Đúng tiến độ",
    status_at_risk: "Có nguy cơ chậm",
    status_behind: "Chậm tiến độ",
    status_missed: "Không đạt mục tiêu",
    status_monitored: "Theo dõi",
    status_incomplete: "Chưa đủ báo cáo",
    progress_target_achieved: "Đã đạt mục tiêu",
    progress_substantial: "Tiến bộ đáng kể",
    progress_moderate: "Tiến bộ vừa phải",
    progress_limited: "Tiến bộ hạn chế",
    progress_deterioration: "Đi xuống",
    outlook_sun: "Nắng: sẽ đạt",
    outlook_partly_cloudy: "Ít mây: gần đạt",
    outlook_cloudy: "Nhiều mây: khó đạt",
    outlook_thunderstorm: "Giông: đi ngược mục tiêu",
    kind_trajectory: "Chậm lộ trình",
    kind_forecast: "Dự báo không đạt",
    kind_verdict: "Không đạt mục tiêu",
    state_firing: "Đang bật",
    state_resolved: "Đã tắt",
    at_least: "ít nhất",
    more_than: "trên",
    at_most: "nhiều nhất",
    less_than: "dưới",
    reason_malformed: "Không đọc được nội dung gửi",
    reason_invalid_field: "Trường dữ liệu sai hoặc thiếu",
    reason_unknown_indicator: "Chỉ tiêu không có trong danh mục",
    reason_unknown_org_unit: "Mã đơn vị không có trong danh mục",
    reason_inactive_org_unit: "Đơn vị không còn (hoặc chưa) tồn tại vào kỳ đó",
    reason_forbidden: "Sở, ngành không chủ trì chỉ tiêu này",
    reason_future_period: "Kỳ báo cáo chưa bắt đầu",
    reason_out_of_range: "Số liệu ngoài khoảng hợp lệ",
};

pub static EN: Text = Text {
    site: "Digital transformation progress",
    overview: "Overview",
    alerts: "Alerts",
    api: "JSON API",
    other_language: "Tiếng Việt",
    live: "Live updates",
    live_paused: "Live updates disconnected",
    bus_down: "The message bus (NATS) cannot be reached: the figures below are the stored ones, and the page will not update itself until it reconnects.",
    database_down: "The database cannot be read.",
    generated: "Generated",
    indicator: "Indicator",
    unit: "Unit",
    level: "Level",
    period: "Period",
    value: "Figure",
    expected: "Path",
    gap: "Gap",
    target: "Target",
    status: "Status",
    progress: "Progress",
    score: "Score",
    outlook: "Outlook",
    projected: "Projected at deadline",
    attainment: "Expected to reach",
    reporting_rate: "Reporting rate",
    coverage: "Report coverage",
    note: "Note",
    department: "Department",
    departments: "Departments",
    owners: "Owners",
    plan: "Plan",
    scope: "Territory",
    target_date: "Deadline",
    plan_closed: "closed",
    plan_open: "open",
    sort_by_gap: "Sort by gap",
    sort_by_catalog: "Catalog order",
    no_figure: "No figure yet",
    not_available: "Not enough data",
    chart: "Over time",
    chart_desc: "The plan territory's figure for each period, the straight path from baseline to target, the tolerance band, the trend projected to the deadline, and the target.",
    legend_figures: "Figure of each period (dots)",
    legend_path: "Path from baseline to target (solid line)",
    legend_band: "Tolerance band (shaded)",
    legend_trend: "Trend projected to the deadline (dashed line)",
    legend_target: "Target (diamond)",
    every_unit: "Every unit",
    no_plan: "No plan follows this indicator yet.",
    other_plans: "Plans",
    valid: "Valid",
    since: "from",
    until: "until",
    always: "always",
    records: "Units with this code",
    parents: "Part of",
    children: "Units under it",
    successors: "Successors",
    retired: "retired",
    none: "None",
    rejections: "Latest rejections",
    reason: "Reason",
    detail: "Detail",
    event_id: "Event id",
    time: "Time",
    overdue: "Overdue reports",
    due: "Due",
    received: "Received",
    missing: "Missing",
    firing_now: "Firing now",
    history: "Recent history",
    kind: "Kind",
    state: "State",
    no_alerts: "No alert is firing.",
    no_rejections: "No recent rejections.",
    no_overdue: "No overdue reports.",
    not_found: "Page not found",
    not_found_detail: "There is no such page, indicator, unit or department.",
    bad_request: "Bad request",
    unavailable: "Temporarily unavailable",
    unavailable_detail: "The database cannot be read. The page will show again once the database answers.",
    back_home: "Back to the overview",
    status_achieved: "Achieved",
    status_on_track: "On track",
    status_at_risk: "At risk",
    status_behind: "Behind",
    status_missed: "Missed",
    status_monitored: "Monitored",
    status_incomplete: "Reports incomplete",
    progress_target_achieved: "Target achieved",
    progress_substantial: "Substantial progress",
    progress_moderate: "Moderate progress",
    progress_limited: "Limited progress",
    progress_deterioration: "Deterioration",
    outlook_sun: "Sun: will make it",
    outlook_partly_cloudy: "Partly cloudy: close",
    outlook_cloudy: "Cloudy: unlikely",
    outlook_thunderstorm: "Thunderstorm: moving away",
    kind_trajectory: "Behind the path",
    kind_forecast: "Forecast miss",
    kind_verdict: "Target missed",
    state_firing: "Firing",
    state_resolved: "Resolved",
    at_least: "at least",
    more_than: "more than",
    at_most: "at most",
    less_than: "less than",
    reason_malformed: "What was sent could not be read",
    reason_invalid_field: "A field is wrong or missing",
    reason_unknown_indicator: "The indicator is not in the catalog",
    reason_unknown_org_unit: "The unit code is not in the catalog",
    reason_inactive_org_unit: "The unit did not exist on that period's date",
    reason_forbidden: "The department does not own this indicator",
    reason_future_period: "The period has not begun",
    reason_out_of_range: "The figure is out of range",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Lang {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::ACCEPT_LANGUAGE, v.parse().unwrap());
        Lang::negotiate(&h)
    }

    #[test]
    fn the_browser_language_decides_and_vietnamese_is_the_default() {
        assert_eq!(Lang::negotiate(&HeaderMap::new()), Lang::Vi);
        assert_eq!(accept("en-US,en;q=0.9"), Lang::En);
        assert_eq!(accept("fr-FR,fr;q=0.9"), Lang::Vi);
        assert_eq!(accept("en;q=0.5,vi;q=0.8"), Lang::Vi);
        assert_eq!(accept("fr,en;q=0.3"), Lang::En);
        assert_eq!(accept("en;q=0"), Lang::Vi);
    }

    #[test]
    fn numbers_are_written_the_way_each_language_writes_them() {
        assert_eq!(Lang::Vi.percent(72.45), "72,5 %");
        assert_eq!(Lang::En.percent(72.45), "72.5%");
        assert_eq!(Lang::Vi.points(-2.63), "−2,6 điểm %");
        assert_eq!(Lang::En.points(0.0), "+0.0 pp");
        assert_eq!(Lang::En.score(-1.25), "−1.2");
        assert_eq!(Lang::Vi.date(NaiveDate::from_ymd_opt(2025, 12, 31).unwrap()), "31/12/2025");
    }
}
