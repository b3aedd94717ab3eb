"""The service levels: latency < 500 ms (alert > 800 ms p99), error rate < 0.5 % (alert > 2 %), CPU
utilisation 60-80 % (alert > 90 %). One frozen source for the Prometheus alert rules ``deepseek serve
alert-rules`` writes, the Grafana dashboard beside them, and the same checks evaluated in-process (which drive the
canary rollback defaults)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .._core.checks import check_number
from .._core.errors import invalid


@dataclasses.dataclass(frozen=True)
class Thresholds:
    latency_slo_s: float = 0.5
    latency_alert_s: float = 0.8
    error_rate_slo: float = 0.005
    error_rate_alert: float = 0.02
    utilisation_low: float = 0.6
    utilisation_high: float = 0.8
    utilisation_alert: float = 0.9
    window: str = "5m"
    for_: str = "5m"

    def __post_init__(self) -> None:
        import re

        for f in dataclasses.fields(self):
            if f.name in ("window", "for_"):
                value = getattr(self, f.name)
                if not isinstance(value, str) or not re.fullmatch(r"([0-9]+(ms|s|m|h|d|w|y))+", value):
                    raise invalid(f.name, value, "a Prometheus duration such as 5m or 1h30m")
            else:
                check_number(getattr(self, f.name), f.name, minimum=0)
        if not 0 < self.latency_slo_s < self.latency_alert_s:
            raise invalid("latency_slo_s/latency_alert_s", (self.latency_slo_s, self.latency_alert_s), "0 < SLO < alert")
        if not 0 <= self.error_rate_slo < self.error_rate_alert < 1:
            raise invalid("error_rate_slo/error_rate_alert", (self.error_rate_slo, self.error_rate_alert),
                          "0 <= SLO < alert < 1")
        if not 0 < self.utilisation_low < self.utilisation_high < self.utilisation_alert <= 1:
            raise invalid("utilisation", (self.utilisation_low, self.utilisation_high, self.utilisation_alert),
                          "0 < low < high < alert <= 1")


def _p99(window: str) -> str:
    return (f"histogram_quantile(0.99, sum by (le, model, version) "
            f"(rate(deepseek_request_duration_seconds_bucket[{window}])))")


def _error_ratio(window: str) -> str:
    return (f'sum by (model, version) (rate(deepseek_requests_total{{status=~"error|timeout|refused"}}[{window}])) / '
            f"sum by (model, version) (rate(deepseek_requests_total[{window}]))")


def alert_rules(t: Thresholds = Thresholds()) -> dict[str, Any]:
    """Prometheus rule groups (recording rules for p99 and error ratio, alerts at the SLO and at the alert line)."""
    w = t.window
    rules: list[dict[str, Any]] = [
        {"record": "deepseek:request_duration_seconds:p99", "expr": _p99(w)},
        {"record": "deepseek:request_error_ratio", "expr": _error_ratio(w)},
        {"alert": "DeepSeekLatencyP99High", "expr": f"deepseek:request_duration_seconds:p99 > {t.latency_alert_s}",
         "for": t.for_, "labels": {"severity": "critical"},
         "annotations": {"summary": "p99 latency of {{ $labels.model }}/{{ $labels.version }} above "
                                    f"{t.latency_alert_s * 1000:.0f} ms",
                         "description": "p99 is {{ $value | humanizeDuration }} over " + w + "."}},
        {"alert": "DeepSeekLatencySLO", "expr": f"deepseek:request_duration_seconds:p99 > {t.latency_slo_s}",
         "for": t.for_, "labels": {"severity": "warning"},
         "annotations": {"summary": "p99 latency of {{ $labels.model }} above the "
                                    f"{t.latency_slo_s * 1000:.0f} ms objective"}},
        {"alert": "DeepSeekErrorRateHigh", "expr": f"deepseek:request_error_ratio > {t.error_rate_alert}",
         "for": t.for_, "labels": {"severity": "critical"},
         "annotations": {"summary": "{{ $labels.model }}/{{ $labels.version }} fails more than "
                                    f"{t.error_rate_alert:.1%} of requests",
                         "description": "error ratio {{ $value | humanizePercentage }} over " + w + "."}},
        {"alert": "DeepSeekErrorRateSLO", "expr": f"deepseek:request_error_ratio > {t.error_rate_slo}",
         "for": t.for_, "labels": {"severity": "warning"},
         "annotations": {"summary": f"error ratio above the {t.error_rate_slo:.1%} objective"}},
        {"alert": "DeepSeekUtilisationHigh", "expr": f"deepseek_process_cpu_utilisation_ratio > {t.utilisation_alert}",
         "for": t.for_, "labels": {"severity": "critical"},
         "annotations": {"summary": f"CPU utilisation above {t.utilisation_alert:.0%}: add replicas"}},
        {"alert": "DeepSeekUtilisationAboveTarget",
         "expr": f"deepseek_process_cpu_utilisation_ratio > {t.utilisation_high}", "for": t.for_,
         "labels": {"severity": "warning"},
         "annotations": {"summary": f"CPU utilisation above the {t.utilisation_low:.0%}-{t.utilisation_high:.0%} target"}},
    ]
    return {"groups": [{"name": "deepseek-serving", "rules": rules}]}


def evaluate(summary: dict[str, float], utilisation: float | None = None, t: Thresholds = Thresholds()) -> list[dict[str, Any]]:
    """The same alerts, on a window summary (``requests``, ``error_rate``, ``p99_ms``) computed in-process."""
    firing: list[dict[str, Any]] = []

    def check(value: float, critical: str, alert_line: float, warning: str, slo_line: float) -> None:
        if value > alert_line:
            firing.append({"alert": critical, "severity": "critical", "value": value})
        elif value > slo_line:
            firing.append({"alert": warning, "severity": "warning", "value": value})

    if summary.get("requests", 0):
        check(summary["p99_ms"] / 1000, "DeepSeekLatencyP99High", t.latency_alert_s, "DeepSeekLatencySLO",
              t.latency_slo_s)
        check(summary["error_rate"], "DeepSeekErrorRateHigh", t.error_rate_alert, "DeepSeekErrorRateSLO",
              t.error_rate_slo)
    if utilisation is not None:
        check(utilisation, "DeepSeekUtilisationHigh", t.utilisation_alert, "DeepSeekUtilisationAboveTarget",
              t.utilisation_high)
    return firing


def grafana_dashboard(t: Thresholds = Thresholds()) -> dict[str, Any]:
    """A Grafana dashboard (JSON model) over the same metrics, with the thresholds drawn in."""

    def panel(pid: int, title: str, expr: str, unit: str, steps: list[tuple[str, float | None]], x: int, y: int) -> dict:
        return {"id": pid, "type": "timeseries", "title": title, "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "targets": [{"refId": "A", "expr": expr, "legendFormat": "{{model}}/{{version}}"}],
                "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": [
                    {"color": c, "value": v} for c, v in steps]}, "custom": {"thresholdsStyle": {"mode": "line"}}},
                    "overrides": []}}

    return {
        "title": "DeepSeek serving", "uid": "deepseek-serving", "schemaVersion": 39, "version": 1,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "10s",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": [
            panel(1, "p99 latency", _p99("1m"), "s",
                  [("green", None), ("yellow", t.latency_slo_s), ("red", t.latency_alert_s)], 0, 0),
            panel(2, "error ratio", _error_ratio("1m"), "percentunit",
                  [("green", None), ("yellow", t.error_rate_slo), ("red", t.error_rate_alert)], 12, 0),
            panel(3, "requests / s", 'sum by (model, version, status) (rate(deepseek_requests_total[1m]))', "reqps",
                  [("green", None)], 0, 8),
            panel(4, "CPU utilisation", "deepseek_process_cpu_utilisation_ratio", "percentunit",
                  [("blue", None), ("green", t.utilisation_low), ("yellow", t.utilisation_high),
                   ("red", t.utilisation_alert)], 12, 8),
            panel(5, "requests in flight", "sum by (model) (deepseek_requests_in_flight)", "short", [("green", None)], 0, 16),
            panel(6, "mean batch size", "sum by (model, version) (rate(deepseek_batch_size_sum[1m])) / "
                  "sum by (model, version) (rate(deepseek_batch_size_count[1m]))", "short", [("green", None)], 12, 16),
        ],
    }
