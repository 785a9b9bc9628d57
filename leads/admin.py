from django.contrib import admin

from crm.admin_widgets import GarbageProofAutocompleteMixin
from leads.models import LeadActivity, LeadScore, ScoreChange, ScoringRule


@admin.register(ScoringRule)
class ScoringRuleAdmin(admin.ModelAdmin):
    list_display = ["factor", "key", "min_value", "max_value", "points", "updated_at"]
    list_filter = ["factor"]


@admin.register(LeadScore)
class LeadScoreAdmin(GarbageProofAutocompleteMixin, admin.ModelAdmin):
    list_display = ["customer", "total_score", "grade", "ai_score", "last_calculated"]
    list_filter = ["grade"]
    search_fields = ["customer__name", "customer__email"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    show_full_result_count = False


@admin.register(LeadActivity)
class LeadActivityAdmin(GarbageProofAutocompleteMixin, admin.ModelAdmin):
    list_display = ["customer", "activity_type", "score_impact", "timestamp"]
    list_filter = ["activity_type"]
    search_fields = ["customer__name", "customer__email"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer", "recorded_by"]
    date_hierarchy = "timestamp"
    show_full_result_count = False


@admin.register(ScoreChange)
class ScoreChangeAdmin(GarbageProofAutocompleteMixin, admin.ModelAdmin):
    list_display = ["customer", "previous_total", "total_score", "previous_grade", "grade", "at"]
    list_filter = ["grade"]
    list_select_related = ["customer"]
    search_fields = ["customer__name"]
    autocomplete_fields = ["customer"]
