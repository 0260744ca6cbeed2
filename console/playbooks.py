"""Playbook pages: the library, starting a run on a case (suggested by the triggers),
a run's step checklist with progress and action results, tasks, approvals waiting
for the current user, and the playbook section of a case page.

Routes take record ids as query or form fields (``?id=``) rather than path
segments, so every route can be exercised by the console's permission matrix with
its known records. Labels come in Vietnamese and English from :data:`LABELS`
(playbook texts themselves are bilingual in the YAML).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from console.app import get_config, get_store
from console.cases import CASE_SECTIONS
from console.i18n import current_language
from console.permissions import Permission, requires
from govsoc.errors import GovsocError, NotFoundError, PlaybookError

bp = Blueprint("playbooks", __name__, url_prefix="/playbooks")

CASE_SECTION = "playbooks/_case_section.html"
if CASE_SECTION not in CASE_SECTIONS:
    CASE_SECTIONS.append(CASE_SECTION)

LABELS: dict[str, tuple[str, str]] = {
    "playbooks": ("Playbook ứng cứu", "Playbooks"),
    "library": ("Thư viện playbook", "Playbook library"),
    "approvals_for_you": ("Chờ bạn phê duyệt", "Waiting for your approval"),
    "no_approvals": ("Không có hành động nào chờ bạn phê duyệt.",
                     "No action is waiting for your approval."),
    "active_runs": ("Đang thực hiện", "Runs under way"),
    "recent_runs": ("Đã kết thúc gần đây", "Recently finished"),
    "no_runs": ("Chưa có lượt chạy nào.", "No runs yet."),
    "run": ("Lượt chạy", "Run"), "playbook": ("Playbook", "Playbook"),
    "status": ("Trạng thái", "Status"), "progress": ("Tiến độ", "Progress"),
    "case": ("Hồ sơ", "Case"), "started": ("Bắt đầu", "Started"),
    "started_by": ("Người chạy", "Started by"), "severity": ("Mức độ", "Severity"),
    "steps": ("Số bước", "Steps"), "triggers": ("Điều kiện kích hoạt", "Triggers"),
    "auto": ("tự động", "automatic"), "step": ("Bước", "Step"),
    "action": ("Hành động", "Action"), "task": ("Nhiệm vụ", "Task"),
    "needs_approval": ("cần phê duyệt", "needs approval"),
    "approve": ("Phê duyệt", "Approve"), "reject": ("Từ chối", "Reject"),
    "comment": ("Ghi chú", "Comment"), "done": ("Hoàn thành", "Done"),
    "notes": ("Ghi chú", "Notes"),
    "evidence": ("Bằng chứng (mỗi dòng một mục)", "Evidence (one item a line)"),
    "evidence_required": ("cần bằng chứng", "evidence required"),
    "skip": ("Bỏ qua", "Skip"), "reason": ("Lý do", "Reason"),
    "resume": ("Thử lại bước lỗi", "Retry the failed step"),
    "cancel": ("Hủy lượt chạy", "Cancel the run"),
    "inputs": ("Đầu vào", "Inputs"), "output": ("Kết quả", "Output"),
    "errors": ("Lỗi", "Errors"), "attempts": ("Số lần thử", "Attempts"),
    "owner": ("Người phụ trách", "Owner"), "approval": ("Phê duyệt", "Approval"),
    "by": ("bởi", "by"), "dry_run": ("Chạy thử (không thay đổi gì)",
                                      "Dry run (changes nothing)"),
    "dry": ("chạy thử", "dry run"),
    "start": ("Chạy playbook", "Run the playbook"),
    "suggested": ("Playbook phù hợp với hồ sơ", "Playbooks that fit this case"),
    "other": ("Playbook khác", "Other playbooks"),
    "none_fit": ("Không playbook nào khớp điều kiện kích hoạt.",
                 "No playbook's triggers fit this case."),
    "runs_on_case": ("Lượt chạy trên hồ sơ này", "Runs on this case"),
    "reason_paused": ("Lý do tạm dừng", "Why it stopped"),
    "when": ("Điều kiện", "Condition"), "description": ("Mô tả", "Description"),
    "back": ("Quay lại", "Back"),
    "started_msg": ("Đã bắt đầu lượt chạy", "Run started"),
    "saved": ("Đã ghi nhận.", "Recorded."),
    "missing": ("Thiếu thông tin: chọn lượt chạy và bước.", "Choose a run and a step."),
    # run and step statuses
    "running": ("đang chạy", "running"), "waiting": ("chờ người xử lý", "waiting for people"),
    "paused": ("tạm dừng do lỗi", "paused by an error"), "completed": ("hoàn tất", "completed"),
    "failed": ("thất bại", "failed"), "cancelled": ("đã hủy", "cancelled"),
    "pending": ("chưa thực hiện", "pending"), "waiting_task": ("chờ thực hiện", "to do"),
    "waiting_approval": ("chờ phê duyệt", "waiting for approval"),
    "succeeded": ("thành công", "succeeded"), "skipped": ("bỏ qua", "skipped"),
    "rejected": ("bị từ chối", "rejected"), "approved": ("đã phê duyệt", "approved"),
    "planned": ("đã lập kế hoạch", "planned"),
}


def t(key: str) -> str:
    vi, en = LABELS.get(key, (key, key))
    return en if current_language() == "en" else vi


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"pb_t": t, "playbook_suggestions": suggestions_for, "pb_approvable": approvable}


def engine() -> Any:
    """One engine per app: the library is loaded once, runs live in the store."""
    cached = current_app.extensions.get("govsoc.playbooks")
    if cached is None:
        import playbooks.settings  # noqa: F401
        from playbooks.engine import PlaybookEngine
        from playbooks.loader import load_library

        config = get_config()
        library = load_library(list(config.get("playbooks.dirs") or ["builtin"]))
        for error in library.errors:
            current_app.logger.error("playbook refused: %s", error)
        cached = PlaybookEngine(get_store(), config, library, background=True)
        current_app.extensions["govsoc.playbooks"] = cached
    return cached


def _username() -> str:
    return str(current_user.username)


def _role() -> str:
    role = current_user.record.role
    return str(getattr(role, "value", role))


def suggestions_for(case: Any) -> tuple[list[Any], list[Any]]:
    """(playbooks whose triggers fit the case, the others)."""
    try:
        fitting = engine().suggest(case_id=case.id)
    except GovsocError:
        fitting = []
    ids = {p.id for p in fitting}
    return fitting, [p for p in engine().library if p.id not in ids]


def approvable(run: Any, step_id: str) -> bool:
    """Whether the current user's role may approve this step of the run."""
    from playbooks.engine import parse_playbook_document

    step = parse_playbook_document(run.playbook, run.playbook_id).step(step_id)
    return _role() in engine()._approver_roles(step)


def _run_view(run: Any) -> dict[str, Any]:
    from playbooks.engine import parse_playbook_document
    from playbooks.model import PHASE_TITLES

    playbook = parse_playbook_document(run.playbook, run.playbook_id)
    language = current_language()
    phases = []
    for phase in playbook.phases:
        steps = []
        for step in (s for s in playbook.steps if s.phase == phase):
            action = engine().actions.get(step.action or "")
            steps.append({"step": step, "record": run.steps[step.id],
                          "title": step.title.get(language),
                          "description": step.description.get(language)
                          if step.description else "",
                          "gated": bool(step.approval) or bool(action and action.destructive)})
        phases.append({"id": phase, "title": PHASE_TITLES[phase][language], "steps": steps})
    done, total = run.progress
    return {"run": run, "playbook": playbook, "phases": phases, "done": done, "total": total,
            "name": playbook.name.get(language)}


@bp.route("")
@requires(Permission.PLAYBOOKS_RUN)
def index() -> Any:
    eng = engine()
    runs = eng.runs.list(limit=200)
    return render_template(
        "playbooks/index.html", library=list(eng.library), errors=eng.library.errors,
        approvals=eng.pending_approvals(_username()),
        active=[r for r in runs if r.status in ("running", "waiting", "paused")],
        finished=[r for r in runs if r.status not in ("running", "waiting", "paused")][:20],
        language=current_language())


@bp.route("/show")
@requires(Permission.CASES_VIEW)
def show() -> Any:
    try:
        playbook = engine().library.get(request.args.get("id", ""))
    except GovsocError:
        abort(404)
    from playbooks.model import PHASE_TITLES

    return render_template("playbooks/show.html", playbook=playbook,
                           language=current_language(), actions=engine().actions,
                           phase_titles=PHASE_TITLES)


@bp.route("/approvals")
@requires(Permission.CASES_VIEW)
def approvals() -> Any:
    return render_template("playbooks/approvals.html",
                           approvals=engine().pending_approvals(_username()),
                           language=current_language())


@bp.route("/run")
@requires(Permission.CASES_VIEW)
def run_page() -> Any:
    try:
        run = engine().runs.get(request.args.get("id", ""))
    except PlaybookError:
        abort(404)
    return render_template("playbooks/run.html", **_run_view(run))


@bp.route("/case/<case_id>/start", methods=["POST"])
@requires(Permission.PLAYBOOKS_RUN)
def start(case_id: str) -> Any:
    playbook_id = request.form.get("playbook_id", "")
    dry_run = request.form.get("dry_run") == "1"
    try:
        get_store().get_case(case_id)
    except NotFoundError:
        abort(404)
    if not playbook_id:
        flash(t("missing"), "error")
        return redirect(url_for("cases.detail", case_id=case_id)), 400
    try:
        run = engine().start(playbook_id, actor=_username(), case_id=case_id, dry_run=dry_run,
                             language=current_language())
    except GovsocError as exc:
        flash(str(exc), "error")
        return redirect(url_for("cases.detail", case_id=case_id))
    flash(f"{t('started_msg')}: {run.id}", "success")
    return redirect(url_for("playbooks.run_page", id=run.id))


def _run_and_step() -> tuple[str, str] | None:
    run_id = request.form.get("run_id", "").strip()
    step_id = request.form.get("step_id", "").strip()
    return (run_id, step_id) if run_id and step_id else None


def _after(run_id: str, action: Any) -> Any:
    """Carry out ``action``; a refusal is shown on the run page, not a server error."""
    try:
        action()
    except NotFoundError:
        abort(404)
    except GovsocError as exc:
        flash(str(exc), "error")
        if "may not approve" in str(exc):
            return redirect(url_for("playbooks.run_page", id=run_id)), 403
        return redirect(url_for("playbooks.run_page", id=run_id)), 409
    flash(t("saved"), "success")
    return redirect(url_for("playbooks.run_page", id=run_id))


@bp.route("/step", methods=["POST"])
@requires(Permission.PLAYBOOKS_RUN)
def step() -> Any:
    target = _run_and_step()
    if target is None:
        return render_template("error.html", code=400, message=t("missing")), 400
    run_id, step_id = target
    op = request.form.get("op", "done")
    if op == "skip":
        reason = request.form.get("reason", "").strip() or "-"
        return _after(run_id, lambda: engine().skip(run_id, step_id, _username(), reason))
    notes = request.form.get("notes", "")
    evidence = [line.strip() for line in request.form.get("evidence", "").splitlines()
                if line.strip()]
    return _after(run_id, lambda: engine().complete_task(run_id, step_id, _username(), notes,
                                                        evidence))


@bp.route("/decide", methods=["POST"])
@requires(Permission.CASES_VIEW)
def decide() -> Any:
    # which roles may approve is the step's business (playbooks.approver_roles or the
    # step's approval.roles); the engine checks it and audits refusals
    target = _run_and_step()
    if target is None:
        return render_template("error.html", code=400, message=t("missing")), 400
    run_id, step_id = target
    approve = request.form.get("decision") == "approve"
    comment = request.form.get("comment", "")
    return _after(run_id, lambda: engine().decide(run_id, step_id, _username(), approve,
                                                 comment))


@bp.route("/control", methods=["POST"])
@requires(Permission.PLAYBOOKS_RUN)
def control() -> Any:
    run_id = request.form.get("run_id", "").strip()
    if not run_id:
        return render_template("error.html", code=400, message=t("missing")), 400
    if request.form.get("op") == "cancel":
        reason = request.form.get("reason", "")
        return _after(run_id, lambda: engine().cancel(run_id, _username(), reason))
    return _after(run_id, lambda: engine().retry(run_id, _username()))
