"""Privacy: personal data found (Presidio, with the spaCy English model in ``ner`` mode) and
handled by a team's ``spec.privacy`` at each boundary of the runtime: model prompts and answers,
tool inputs and outputs, memory writes, and logs, trace content and events.

Nothing here imports Presidio or spaCy at module import; they load with the first
:class:`~hive.runtime.privacy.detect.Detector`.
"""
