"""The periodic report for managers: alerts by severity and source, top rules, the
false-positive rate, cases opened and closed, SLA breaches, MTTD/MTTA/MTTR and charts,
for a day, a week, a month or any range, in Vietnamese or English."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from govsoc.config import Config
from govsoc.events import utcnow
from playbooks.reports.render import ReportError, render_html, write_report
from playbooks.settings import section
from playbooks.sla import ResponseMetrics, alert_clock, case_clock, response_metrics, sla_targets

SEVERITIES = ("critical", "high", "medium", "low", "informational")
#: the report reads at most this many alerts and cases (it says so when it stops there)
MAX_RECORDS = 50000

LABELS: dict[str, dict[str, str]] = {
    "title": {"vi": "Báo cáo tình hình an toàn thông tin", "en": "Security operations report"},
    "period": {"vi": "Kỳ báo cáo", "en": "Period"},
    "generated": {"vi": "Lập lúc", "en": "Generated"},
    "alerts": {"vi": "Cảnh báo", "en": "Alerts"},
    "events": {"vi": "Sự kiện khớp", "en": "Matching events"},
    "cases_opened": {"vi": "Hồ sơ mở mới", "en": "Cases opened"},
    "cases_closed": {"vi": "Hồ sơ đã đóng", "en": "Cases closed"},
    "fp_rate": {"vi": "Tỷ lệ cảnh báo nhầm", "en": "False-positive rate"},
    "sla_breaches": {"vi": "Vi phạm SLA", "en": "SLA breaches"},
    "by_severity": {"vi": "Cảnh báo theo mức độ", "en": "Alerts by severity"},
    "by_source": {"vi": "Cảnh báo theo nguồn phát hiện", "en": "Alerts by detection source"},
    "by_day": {"vi": "Cảnh báo theo thời gian", "en": "Alerts over time"},
    "top_rules": {"vi": "Quy tắc phát hiện nhiều nhất", "en": "Top rules"},
    "rule": {"vi": "Quy tắc", "en": "Rule"},
    "count": {"vi": "Số lượng", "en": "Count"},
    "severity": {"vi": "Mức độ", "en": "Severity"},
    "source": {"vi": "Nguồn", "en": "Source"},
    "metrics": {"vi": "Thời gian xử lý", "en": "Response times"},
    "mttd": {"vi": "Thời gian phát hiện trung bình (MTTD)", "en": "Mean time to detect (MTTD)"},
    "mtta": {"vi": "Thời gian tiếp nhận trung bình (MTTA)",
             "en": "Mean time to acknowledge (MTTA)"},
    "mttr": {"vi": "Thời gian xử lý trung bình (MTTR)", "en": "Mean time to resolve (MTTR)"},
    "case_mttr": {"vi": "Thời gian đóng hồ sơ trung bình", "en": "Mean time to close a case"},
    "sla": {"vi": "Cam kết thời gian xử lý (SLA)", "en": "Service levels (SLA)"},
    "ack_breaches": {"vi": "Tiếp nhận quá hạn", "en": "Acknowledged late"},
    "resolve_breaches": {"vi": "Xử lý quá hạn", "en": "Resolved late"},
    "cases": {"vi": "Hồ sơ sự cố", "en": "Cases"},
    "case": {"vi": "Hồ sơ", "en": "Case"},
    "status": {"vi": "Trạng thái", "en": "Status"},
    "opened": {"vi": "Mở lúc", "en": "Opened"},
    "closed": {"vi": "Đóng lúc", "en": "Closed"},
    "none": {"vi": "Không có", "en": "None"},
    "truncated": {"vi": "Báo cáo chỉ tính {n} bản ghi đầu tiên.",
                  "en": "The report counts the first {n} records only."},
    "critical": {"vi": "Nghiêm trọng", "en": "Critical"},
    "high": {"vi": "Cao", "en": "High"},
    "medium": {"vi": "Trung bình", "en": "Medium"},
    "low": {"vi": "Thấp", "en": "Low"},
    "informational": {"vi": "Thông tin", "en": "Informational"},
}

_COLOURS = {"critical": "#8b0000", "high": "#c0392b", "medium": "#d68910", "low": "#2874a6",
            "informational": "#7f8c8d"}


@dataclass
class SummaryReport:
    start: datetime
    end: datetime
    language: str
    generated_at: datetime
    unit: dict[str, Any]
    alert_count: int
    event_count: int
    by_severity: dict[str, int]
    by_source: dict[str, int]
    top_rules: list[dict[str, Any]]
    timeline: list[tuple[datetime, int]]
    false_positive_rate: float | None
    cases_opened: list[Any]
    cases_closed: list[Any]
    ack_breaches: dict[str, int]
    resolve_breaches: dict[str, int]
    case_breaches: int
    metrics: ResponseMetrics
    truncated: bool = False
    charts: dict[str, str] = field(default_factory=dict)

    @property
    def sla_breaches(self) -> int:
        return sum(self.ack_breaches.values()) + sum(self.resolve_breaches.values()) + \
            self.case_breaches


def _all(list_page: Any, limit: int = MAX_RECORDS) -> tuple[list[Any], bool]:
    items: list[Any] = []
    after = None
    while True:
        page = list_page(after)
        items.extend(page.items)
        if len(items) >= limit:
            return items[:limit], True
        if not page.next_cursor or not page.items:
            return items, False
        after = page.next_cursor


def build_summary(store: Any, config: Config, start: datetime, end: datetime,
                  language: str = "vi", now: datetime | None = None) -> SummaryReport:
    from store.base import AlertFilter, AlertStatus

    if end <= start:
        raise ReportError(f"the period ends ({end.isoformat()}) before it starts "
                          f"({start.isoformat()})")
    now = now or utcnow()
    flt = AlertFilter(start=start, end=end)
    alerts, truncated = _all(lambda after: store.list_alerts(flt, sort="first_seen",
                                                             descending=False, limit=500,
                                                             after=after))
    # alerts whose activity began in the period (the store's filter also keeps older
    # alerts still firing into it; those belong to earlier reports)
    alerts = [a for a in alerts if start <= a.first_seen < end]
    cases, cases_truncated = _all(lambda after: store.list_cases(None, limit=500, after=after))
    opened = [c for c in cases if start <= c.created_at < end]
    closed = [c for c in cases if c.closed_at is not None and start <= c.closed_at < end]
    targets = sla_targets(config)
    clock_time = min(now, end)
    ack_breaches: Counter[str] = Counter()
    resolve_breaches: Counter[str] = Counter()
    for alert in alerts:
        clock = alert_clock(alert, targets, clock_time)
        if clock.acknowledge_breached:
            ack_breaches[alert.severity.value] += 1
        if clock.resolve_breached:
            resolve_breaches[alert.severity.value] += 1
    case_breaches = sum(1 for c in opened if case_clock(c, targets, clock_time).resolve_breached)
    fp = sum(1 for a in alerts if a.status == AlertStatus.FALSE_POSITIVE)
    closed_alerts = sum(1 for a in alerts if a.status in (AlertStatus.FALSE_POSITIVE,
                                                          AlertStatus.RESOLVED))
    rules: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        entry = rules.setdefault(alert.rule_id, {"rule_id": alert.rule_id,
                                                 "rule_name": alert.rule_name, "alerts": 0,
                                                 "events": 0, "severity": alert.severity.value})
        entry["alerts"] += 1
        entry["events"] += alert.count
    span = end - start
    step = timedelta(hours=1) if span <= timedelta(days=2) else timedelta(days=1)
    buckets: Counter[datetime] = Counter()
    for alert in alerts:
        offset = (alert.first_seen - start) // step
        buckets[start + offset * step] += 1
    timeline: list[tuple[datetime, int]] = []
    moment = start
    while moment < end and len(timeline) < 400:
        timeline.append((moment, buckets.get(moment, 0)))
        moment += step
    report = SummaryReport(
        start=start, end=end, language=language, generated_at=now,
        unit=section(config, "reports.unit"),
        alert_count=len(alerts), event_count=sum(a.count for a in alerts),
        by_severity={s: sum(1 for a in alerts if a.severity.value == s) for s in SEVERITIES},
        by_source=dict(Counter(a.source for a in alerts).most_common()),
        top_rules=sorted(rules.values(), key=lambda r: (-r["alerts"], -r["events"]))[:10],
        timeline=timeline,
        false_positive_rate=round(100 * fp / closed_alerts, 1) if closed_alerts else None,
        cases_opened=opened, cases_closed=closed,
        ack_breaches=dict(ack_breaches), resolve_breaches=dict(resolve_breaches),
        case_breaches=case_breaches,
        metrics=response_metrics(alerts, closed),
        truncated=truncated or cases_truncated)
    report.charts = {"severity": bar_chart([(label(s, language), report.by_severity[s],
                                             _COLOURS[s]) for s in SEVERITIES]),
                     "timeline": column_chart(timeline, step)}
    return report


def label(key: str, language: str) -> str:
    entry = LABELS.get(key)
    return entry.get(language, entry["vi"]) if entry else key


def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def bar_chart(rows: list[tuple[str, int, str]], width: int = 520) -> str:
    """Horizontal bars as inline SVG (prints the same in every browser and in the PDF)."""
    height = 22 * len(rows) + 6
    top = max([v for _, v, _ in rows] + [1])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="DejaVu Sans, sans-serif" font-size="11">']
    for i, (name, value, colour) in enumerate(rows):
        y = 4 + i * 22
        bar = int((width - 190) * value / top)
        parts.append(f'<text x="0" y="{y + 13}">{_esc(name)}</text>')
        parts.append(f'<rect x="120" y="{y}" width="{max(bar, 1)}" height="16" '
                     f'fill="{colour}"/>')
        parts.append(f'<text x="{126 + bar}" y="{y + 13}">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(timeline: list[tuple[datetime, int]], step: timedelta,
                 width: int = 680, height: int = 150) -> str:
    if not timeline:
        return ""
    top = max([v for _, v in timeline] + [1])
    slot = (width - 40) / len(timeline)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" '
             f'font-family="DejaVu Sans, sans-serif" font-size="10">',
             f'<line x1="30" y1="{height}" x2="{width}" y2="{height}" stroke="#666"/>',
             f'<text x="0" y="12">{top}</text><text x="0" y="{height}">0</text>']
    every = max(1, len(timeline) // 8)
    fmt = "%H:%M" if step < timedelta(days=1) else "%d/%m"
    for i, (moment, value) in enumerate(timeline):
        x = 32 + i * slot
        h = (height - 10) * value / top
        parts.append(f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{max(slot - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="#2874a6"><title>{value}</title></rect>')
        if i % every == 0:
            parts.append(f'<text x="{x:.1f}" y="{height + 14}">{moment.strftime(fmt)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_summary_html(report: SummaryReport) -> str:
    def t(key: str) -> str:
        return label(key, report.language)

    return render_html("summary.html", r=report, t=t, severities=SEVERITIES,
                       max_records=MAX_RECORDS)


def write_summary(report: SummaryReport, target: Path, fmt: str, config: Config,
                  timeout: float = 120) -> Path:
    chromium = section(config, "reports").get("chromium")
    return write_report(render_summary_html(report), Path(target), fmt, chromium, timeout)
