"""Windows event records → ECS: the ``winlog.*`` rendering and the ECS enrichment.

:mod:`collectors.windows.winlog` turns one event record in the XML-as-JSON shape
(``{"Event": {"System": ..., "EventData": ...}}``, as the ``evtx`` package and
``evtx_dump`` render it) into an event carrying ``winlog.*``, ``host.name``,
``event.code``, ``event.dataset`` and ``@timestamp``.
:mod:`collectors.windows.ecs` adds the ECS fields (``process.*``, ``user.*``,
``source.*``, ``file.*``, ``registry.*``, ``dns.*``, ``event.category/type/
action/outcome``) that each Security, System, Sysmon and PowerShell event id
carries. Both are shared by the EVTX reader (:mod:`collectors.evtx`) and the
Winlogbeat/Elastic Agent JSON reader (:mod:`collectors.winlogbeat`).
"""
