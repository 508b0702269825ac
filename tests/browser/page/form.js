// The test drives the page through these two functions (tests/browser/sdc.py).
window.renderQuestionnaire = function (questionnaire, response) {
  var options = response ? { questionnaireResponse: response } : {};
  return LForms.Util.addFormToPage(questionnaire, "form", options);
};
window.renderedResponse = function () {
  return LForms.Util.getFormFHIRData("QuestionnaireResponse", "R4", document.getElementById("form"));
};
